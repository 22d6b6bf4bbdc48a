# shellcheck shell=bash
# A reset (qemu's system_reset) while stage 2 waits before the flash: the old
# OS comes up untouched, its status saying stage 2 did not finish.
CASE_DISK=old
CASE_TIMEOUT=240
case_payload() { # <dir>
  write_config "$1/takeover.toml" "$image_sha256"
  write_case_sh "$1/case.sh" --inject-fault stage2-delay
}
case_during() {
  if wait_for_line "$STAGE2_WAITING" "$CASE_TIMEOUT"; then
    monitor system_reset
  fi
}
case_check() {
  want 'FERRY-VM old-os running case.sh'
  want "$STAGE2_WAITING"
  want_none 'FERRY-VM new-os'
  want_count 'FERRY-VM old-os up' 2
  after_reboot want 'FERRY-VM old-os marker: old OS'
  after_reboot want "FERRY-VM old-os hostname: $HOSTNAME\$"
  after_reboot want "FERRY-VM old-os status: .*($STATUS_STAGE2_UNFINISHED)"
  after_reboot want 'FERRY-VM old-os done'
  # A panic (panic=10) reboots too: not what this case proves.
  want_none 'Kernel panic'
  grep -q system_reset "$results/$case.monitor" 2>/dev/null || problems+=("system_reset was not sent")
  disk_head_is old
}
