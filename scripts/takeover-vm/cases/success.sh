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
  want 'FERRY-VM new-os report begin'
  want 'FERRY-VM new-os marker: new OS'
  want "FERRY-VM new-os hostname: $HOSTNAME\$"
  want "FERRY-VM new-os addr: .*$ADDRESS"
  want_none "FERRY-VM new-os addr: .*$ADDRESS_DYNAMIC"
  want "FERRY-VM new-os route: ${DEFAULT_ROUTE#^}"
  local path sum
  while read -r sum path; do
    case $path in
      etc/ssh/*.pub | root/.ssh/authorized_keys) want_fixed "FERRY-VM new-os identity: $sum  /$path" ;;
    esac
  done <"$sums"
  for path in "${BACKED_UP[@]}"; do
    sum=$(awk -v p="$path" 'substr($0, 67) == p { print $1 }' "$sums")
    want_fixed "FERRY-VM new-os data: $sum  ferry-takeover/"
  done
  want "FERRY-VM new-os data: [0-9a-f]{64}  ferry-takeover/.*$DUMP_NAME"
  want 'FERRY-VM new-os status exit: 0$'
  want "FERRY-VM new-os status: .*($STATUS_COMPLETED)"
  want 'FERRY-VM new-os report end'
  # A panic (panic=10) reboots too: not what this case proves.
  want_none 'Kernel panic'
  disk_head_is new
}
