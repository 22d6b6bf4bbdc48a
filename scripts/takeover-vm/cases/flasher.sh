# shellcheck shell=bash
# Strategy flasher: ferry lays the new OS into the old disk's swap (p5),
# writes it and the carry-over while the old OS runs, adds a grub entry and
# reboots into it once. The new OS comes up with the old OS's network,
# hostname, SSH host keys, authorized_keys and backed-up files, confirms
# (its entry becomes grub's default), and its status says completed; it
# reboots once more and grub's committed default brings it up again.
CASE_DISK=old
CASE_TIMEOUT=480
case_payload() { # <dir>
  write_flasher_config "$1/takeover.toml" "$image_sha256"
  write_case_sh "$1/case.sh"
}
case_check() {
  want 'FERRY-VM old-os running case.sh'
  # ferry's last word before its reboot (case.sh's own line may be cut
  # short by the shutdown).
  want 'takeover: rebooting into the new OS once'
  want_none 'FERRY-VM case: ferry exited [1-9]'
  want_none "$STAGE2_PREFIX"
  want_count 'FERRY-VM old-os up' 1
  want "FERRY-VM new-os confirm: .*($CONFIRMED)"
  want 'FERRY-VM new-os confirm exit: 0$'
  want_new_os_carried_over
  want 'FERRY-VM new-os rebooting once after the confirm'
  # The one-shot boot carries the report-in deadline; confirmed in time.
  want "$DEADLINE_ARMED"
  want_none "$DEADLINE_PASSED"
  # The second boot: grub's default (committed), not the one-shot.
  want_count 'FERRY-VM new-os report begin' 2
  after_new_reboot want 'FERRY-VM new-os marker: new OS'
  after_new_reboot want "FERRY-VM new-os hostname: $HOSTNAME\$"
  after_new_reboot want "FERRY-VM new-os confirm: .*($CONFIRMED_BEFORE)"
  after_new_reboot want "FERRY-VM new-os status: .*($STATUS_COMPLETED)"
  after_new_reboot want 'FERRY-VM new-os report end'
  after_new_reboot want_none 'FERRY-VM new-os rebooting'
  # Committed: grub's default passes no deadline, the unit never runs.
  after_new_reboot want_none 'ferry-takeover deadline:'
  want_none 'FERRY-VM old-os done'
  # A panic (panic=10) reboots too: not what this case proves.
  want_none 'Kernel panic'
  # The old OS's boot code and grub stay; only the logical
  # partitions inside the extended one changed.
  disk_head_is old-boot
}
