# shellcheck shell=bash
# The image's sha256 differs from the config's: ferry refuses before touching
# anything; case.sh reboots; the old OS comes up again, untouched, and its
# status says no takeover happened.
CASE_DISK=old
CASE_TIMEOUT=240
case_payload() { # <dir>
  write_config "$1/takeover.toml" "$(printf '0%.0s' {1..64})"
  write_case_sh "$1/case.sh"
}
case_check() {
  want 'FERRY-VM old-os running case.sh'
  want 'FERRY-VM case: ferry exited [1-9]'
  want_none "$STAGE2_PREFIX"
  want_none 'FERRY-VM new-os'
  want_count 'FERRY-VM old-os up' 2
  after_reboot want 'FERRY-VM old-os marker: old OS'
  after_reboot want "FERRY-VM old-os hostname: $HOSTNAME\$"
  after_reboot want "FERRY-VM old-os status: .*($STATUS_NO_TAKEOVER)"
  after_reboot want 'FERRY-VM old-os done'
  # A panic (panic=10) reboots too: not what this case proves.
  want_none 'Kernel panic'
  disk_head_is old
}
