# shellcheck shell=bash
# The old OS boots on its own and says so, with ferry's status line.
CASE_DISK=old
CASE_TIMEOUT=150
case_payload() { :; } # ferry only, no case.sh: the old OS reports and powers off
case_check() {
  want 'FERRY-VM old-os up'
  want 'FERRY-VM old-os marker: old OS'
  want "FERRY-VM old-os hostname: $HOSTNAME\$"
  want 'FERRY-VM old-os status exit: '
  want 'FERRY-VM old-os no case.sh'
  want_count 'FERRY-VM old-os up' 1
  disk_head_is old
}
