# shellcheck shell=bash
# The new OS image, as the main disk, boots and prints its report.
CASE_DISK=new
CASE_TIMEOUT=150
case_check() {
  want 'FERRY-VM new-os report begin'
  want 'FERRY-VM new-os marker: new OS'
  want "FERRY-VM new-os hostname: balena-like"
  # On its own the new OS has no network: the success case's network can
  # only come from what ferry carried over.
  want_none "FERRY-VM new-os addr: .*10\.0\.2\.15"
  want_none "FERRY-VM new-os route: default"
  want 'FERRY-VM new-os status exit: '
  want 'FERRY-VM new-os report end'
}
