# shellcheck shell=bash
# Stage 2 stops feeding the watchdog before the flash and hangs: qemu's
# i6300esb resets the VM, and the old OS comes up untouched, its status saying
# stage 2 did not finish and nothing was written.
CASE_DISK=old
CASE_TIMEOUT=360
case_payload() { # <dir>
  write_config "$1/takeover.toml" "$image_sha256"
  write_case_sh "$1/case.sh" --inject-fault stage2-hang
}
case_check() {
  want 'FERRY-VM old-os running case.sh'
  want "$STAGE2_PREFIX"
  want_none 'FERRY-VM new-os'
  want_count 'FERRY-VM old-os up' 2
  after_reboot want 'FERRY-VM old-os marker: old OS'
  after_reboot want "FERRY-VM old-os hostname: $HOSTNAME\$"
  after_reboot want "FERRY-VM old-os status: .*($STATUS_STAGE2_UNFINISHED)"
  after_reboot want 'FERRY-VM old-os done'
  # A panic (panic=10) reboots too: not what this case proves.
  want_none 'Kernel panic'
  disk_head_is old
}
