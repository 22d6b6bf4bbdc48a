# shellcheck shell=bash
# The new OS image, as the main disk, boots and prints its report.
CASE_DISK=new
CASE_TIMEOUT=300
case_check() {
  want 'FERRY-VM new-os report begin'
  want 'FERRY-VM new-os marker: new OS'
  want 'FERRY-VM new-os nm: '
  want 'FERRY-VM new-os status exit: '
  want 'FERRY-VM new-os report end'
}
