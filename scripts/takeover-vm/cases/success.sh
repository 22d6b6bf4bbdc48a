# shellcheck shell=bash
# The whole takeover: the VM comes up in the new OS with the old OS's
# network, hostname, SSH host keys, authorized_keys and backed-up files, and
# `ferry takeover status` says completed.
CASE_DISK=old
CASE_TIMEOUT=360
case_payload() { # <dir>
  write_config "$1/takeover.toml" "$image_sha256"
  write_case_sh "$1/case.sh"
}
case_check() {
  want 'FERRY-VM old-os running case.sh'
  want "$STAGE2_PREFIX"
  want_new_os_carried_over
  want 'FERRY-VM new-os report end'
  # A panic (panic=10) reboots too: not what this case proves.
  want_none 'Kernel panic'
  disk_head_is new
}
