# shellcheck shell=bash
# Strategy flasher with a new OS whose kernel is missing: ferry's run
# succeeds and reboots into the one-shot entry; grub cannot load the kernel
# and falls back (fallback=0) to the old OS, whose status says fell-back.
CASE_DISK=old
CASE_TIMEOUT=360
CASE_IMAGE=$images/new-os-noboot.img.gz
case_payload() { # <dir>
  write_flasher_config "$1/takeover.toml" "$(sha256sum "$CASE_IMAGE" | cut -c1-64)"
  write_case_sh "$1/case.sh"
}
# Shared with fallback-panic.sh.
fallback_check() {
  want 'FERRY-VM old-os running case.sh'
  # ferry's last word before its reboot (case.sh's own line may be cut
  # short by the shutdown).
  want 'takeover: rebooting into the new OS once'
  want_none 'FERRY-VM case: ferry exited [1-9]'
  want_none 'FERRY-VM new-os report'
  want_count 'FERRY-VM old-os up' 2
  after_reboot want 'FERRY-VM old-os marker: old OS'
  after_reboot want "FERRY-VM old-os hostname: $HOSTNAME\$"
  after_reboot want "FERRY-VM old-os status: .*($STATUS_FELL_BACK)"
  after_reboot want 'FERRY-VM old-os done'
  disk_head_is old-boot
}
case_check() {
  fallback_check
  want_none 'Kernel panic'
}
