# shellcheck shell=bash
# Strategy flasher with a new OS that boots and never confirms (a flag
# carried over in the backup tells its test units so): the report-in
# deadline ferry carried into it reboots the machine, grub's one-shot is
# spent, and the old OS comes back; its status says fell-back, with the
# note the deadline left.
CASE_DISK=old
CASE_TIMEOUT=600
DEADLINE=120
case_payload() { # <dir>
  write_flasher_config "$1/takeover.toml" "$image_sha256"
  sed -i 's|^paths = \[|paths = ["/mnt/payload/ferry-vm-no-confirm", |' "$1/takeover.toml"
  printf '\n[confirm]\ndeadline_seconds = %s\n' "$DEADLINE" >>"$1/takeover.toml"
  echo "the deadline case: the new OS does not confirm" >"$1/ferry-vm-no-confirm"
  write_case_sh "$1/case.sh"
}
case_check() {
  want 'FERRY-VM old-os running case.sh'
  want 'takeover: rebooting into the new OS once'
  want_none 'FERRY-VM case: ferry exited [1-9]'
  want 'FERRY-VM new-os marker: new OS'
  want 'FERRY-VM new-os confirm: skipped'
  want "FERRY-VM new-os status: .*($STATUS_UNCONFIRMED)"
  want 'FERRY-VM new-os waits for its report-in deadline'
  want "$DEADLINE_ARMED.* $DEADLINE s of its boot"
  want "$DEADLINE_PASSED"
  want_count 'FERRY-VM new-os report begin' 1
  want_count 'FERRY-VM old-os up' 2
  after_reboot want 'FERRY-VM old-os marker: old OS'
  after_reboot want "FERRY-VM old-os hostname: $HOSTNAME\$"
  after_reboot want "FERRY-VM old-os status: .*($STATUS_FELL_BACK)"
  after_reboot want "FERRY-VM old-os status: .*\"deadline_passed\""
  after_reboot want "FERRY-VM old-os status: .*within its deadline \\($DEADLINE s\\)"
  after_reboot want 'FERRY-VM old-os done'
  want_none 'Kernel panic'
  disk_head_is old-boot
}
