# shellcheck shell=bash
# Strategy flasher with a new OS whose /sbin/init exits at once: the kernel
# panics, panic=10 reboots, the one-shot is spent, and the old OS comes up;
# its status says fell-back.
# shellcheck source=fallback.sh
. "$here/cases/fallback.sh"
CASE_IMAGE=$images/new-os-panic.img.gz
case_check() {
  fallback_check
  want 'FERRY-VM new-os init exits at once'
  want 'Kernel panic'
}
