#!/usr/bin/env bash
# Proves `ferry takeover run` in a real qemu VM (issue 15, "How it is
# proved"): builds a bookworm "old OS" disk and a balena-like "new OS" image
# (cached under /var/cache/ferry-test/takeover-vm/<hash of the recipes>/),
# then boots each case on its own qcow2 overlay of the cached disk, with a
# payload disk holding ferry, the new OS image, takeover.toml and case.sh.
# Software emulation only (-accel tcg): this host's /dev/kvm hangs Debian
# guest kernels.
# Each case has a timeout (cases/<case>.sh) whose sum stays within 25
# minutes; the nine cases take about 14 minutes on 2 cores, 16 with the
# images built (about 2 minutes).
#
# Prints one line per case: `<case> ok|FAILED <seconds>s` (a failure adds
# what was missing and the last serial lines, systemd's start/stop chatter
# left out), the cases' and the whole script's time, then exactly
# `takeover-vm: N of M cases ok`. When qemu cannot run, one `SKIP: <case>:
# <why>` line per case and `takeover-vm: 0 of 0 cases ok`. Exits non-zero
# when a case failed.
#
# usage: scripts/test-takeover-vm.sh            (as root)
#   FERRY_VM_CASES="boot success …"  the cases to run (boot = boot-old
#                                     boot-new; ram = success checksum
#                                     watchdog reset; flasher-all = flasher
#                                     fallback fallback-panic deadline);
#                                     default: all
# Serial logs: ${CARGO_TARGET_DIR:-target}/takeover-vm/<case>.log
set -uo pipefail
script_start=$(date +%s)
cd "$(dirname "$0")/.."
here=scripts/takeover-vm
# shellcheck source=takeover-vm/lib.sh
. "$here/lib.sh"
# shellcheck source=takeover-vm/expect.sh
. "$here/expect.sh"

all_cases=(boot-old boot-new success checksum watchdog reset flasher fallback fallback-panic deadline)
cases=()
for c in ${FERRY_VM_CASES:-${all_cases[*]}}; do
  case $c in
    boot) cases+=(boot-old boot-new) ;;
    ram) cases+=(success checksum watchdog reset) ;;
    flasher-all) cases+=(flasher fallback fallback-panic deadline) ;;
    *) cases+=("$c") ;;
  esac
done
for c in "${cases[@]}"; do
  [ -f "$here/cases/$c.sh" ] || { echo "no such case: $c (have: ${all_cases[*]})" >&2; exit 2; }
done

target=${CARGO_TARGET_DIR:-target}
results=$target/takeover-vm
mkdir -p "$results" || exit 1
results=$(cd "$results" && pwd)
cache_root=/var/cache/ferry-test/takeover-vm
VM_MEMORY=1536

skip_all() {
  local c
  for c in "${cases[@]}"; do echo "SKIP: $c: $1"; done
  echo "takeover-vm: 0 of 0 cases ok"
  exit 0
}

# ---------------------------------------------------------------- qemu
[ "$(id -u)" = 0 ] || skip_all "not root (the images need losetup, mount, chroot)"
if ! why=$(ensure_qemu); then skip_all "qemu cannot be had: $why"; fi
qemu-system-x86_64 -accel help 2>/dev/null | grep -qx tcg || skip_all "qemu-system-x86_64 has no tcg accelerator"
for tool in mmdebstrap sfdisk losetup mkfs.ext4 grub-install ssh-keygen gzip; do
  command -v "$tool" >/dev/null || skip_all "no $tool on the host"
done
[ -d /usr/lib/grub/i386-pc ] || skip_all "no grub-pc-bin on the host (grub's i386-pc modules)"

work=$(mktemp -d)
loops=() mounts=() qemu_pids=()
cleanup() {
  local i
  for p in "${qemu_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do [ -n "${mounts[i]}" ] && umount -l "${mounts[i]}" 2>/dev/null; done
  for l in "${loops[@]}"; do [ -n "$l" ] && losetup -d "$l" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- ferry
ferry_bin=$target/release/ferry
if [ ! -x "$ferry_bin" ]; then
  echo "takeover-vm: building ferry (cargo build --release -p ferry)"
  cargo build --release -p ferry >"$results/cargo-build.log" 2>&1 || {
    tail -n 30 "$results/cargo-build.log"
    for c in "${cases[@]}"; do echo "$c FAILED 0s: ferry did not build (see $results/cargo-build.log)"; done
    echo "takeover-vm: 0 of ${#cases[@]} cases ok"
    exit 1
  }
fi

# The guests get it without debug info (the release profile keeps it): a
# smaller payload, and stage 2 copies ferry into RAM.
if command -v strip >/dev/null; then
  strip -o "$results/ferry" "$ferry_bin" && ferry_bin=$results/ferry
fi

# ---------------------------------------------------------------- images
recipe_hash=$(cd "$here" && find build-images.sh customize-common.sh old-os new-os -type f -print0 |
  LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
images=$cache_root/$recipe_hash
mkdir -p "$cache_root"
build_start=$(date +%s)
if ! {
  flock 9
  if [ ! -f "$images/old-os.raw" ] || [ ! -f "$images/new-os.raw" ]; then
    echo "takeover-vm: building the images into $images (log: $results/build.log)"
    mirror=$(host_mirror_for bookworm) || { echo "no Debian mirror in /etc/apt/sources.list{,.d}; set FERRY_TEST_MIRROR" >"$results/build.log"; false; } &&
      IFS=$'\t' read -r mirror_uri signed_by <<<"$mirror" &&
      "$here/build-images.sh" "$images" "$mirror_uri" "$signed_by" "$cache_root/debs" >"$results/build.log" 2>&1
  fi
} 9>"$cache_root/.lock"; then
  tail -n 30 "$results/build.log"
  for c in "${cases[@]}"; do echo "$c FAILED 0s: the images did not build (see $results/build.log)"; done
  echo "takeover-vm: 0 of ${#cases[@]} cases ok"
  exit 1
fi
build_seconds=$(($(date +%s) - build_start))
# In use: keep; images of other recipes unused for two hours go (a run
# takes less, so no running test loses its images).
touch "$images"
find "$cache_root" -mindepth 1 -maxdepth 1 -type d -regex '.*/[0-9a-f]\{16\}' \
  ! -name "$recipe_hash" -mmin +120 -exec rm -rf {} + 2>/dev/null
sums=$images/identity.sums

# The new OS with this build's ferry in /usr/local/bin, compressed for the
# payload; remade when ferry changes.
ferry_sum=$(sha256sum "$ferry_bin" | cut -c1-64)
new_raw=$results/new-os.raw
new_gz=$results/new-os.img.gz
if [ "$(cat "$results/new-os.ferry" 2>/dev/null)" != "$ferry_sum|$recipe_hash" ] || [ ! -f "$new_gz" ]; then
  rm -f "$results/new-os.ferry" "$new_gz"
  cp --sparse=always "$images/new-os.raw" "$new_raw"
  dev=$(losetup -P -f --show "$new_raw") && loops+=("$dev")
  part_nodes "$dev"
  mkdir -p "$work/new-root"
  mount "${dev}p2" "$work/new-root" && mounts+=("$work/new-root")
  install -m 0755 "$ferry_bin" "$work/new-root/usr/local/bin/ferry"
  umount "$work/new-root" && mounts=("${mounts[@]/$work\/new-root/}")
  losetup -d "$dev" && loops=("${loops[@]/$dev/}")
  gzip -1 -c "$new_raw" >"$new_gz.tmp" && mv "$new_gz.tmp" "$new_gz"
  echo "$ferry_sum|$recipe_hash" >"$results/new-os.ferry"
fi
image_sha256=$(sha256sum "$new_gz" | cut -c1-64)
prep_seconds=$(($(date +%s) - build_start))
size_of() { du -h --apparent-size "$1" | cut -f1; }
echo "takeover-vm: images ready in ${prep_seconds}s (build/cache ${build_seconds}s):" \
  "old-os.raw $(size_of "$images/old-os.raw") ($(du -h "$images/old-os.raw" | cut -f1) used)," \
  "new-os.raw $(size_of "$new_raw") ($(du -h "$new_raw" | cut -f1) used), new-os.img.gz $(size_of "$new_gz")," \
  "VM RAM ${VM_MEMORY} MiB"

# ---------------------------------------------------------------- case kit
# What a case's files use: write_config, write_flasher_config,
# write_case_sh, wait_for_line, monitor, and the checks want, want_fixed,
# want_none, want_count, after_reboot, disk_head_is (each records what is
# missing in $problems). A case may set CASE_IMAGE (the image the payload
# carries; default the new OS with this build's ferry).

write_config() { # <file> <sha256>
  cat >"$1" <<TOML
strategy = "ram"

[image]
source = "/mnt/payload/new-os.img.gz"
sha256 = "$2"

[target]
disk = "/dev/vda"
root_partition = 2
data_partition = 4

[backup]
paths = ["/srv/app", "/etc/app.conf"]
script = "/usr/local/sbin/app-dump"

[watchdog]
require = true
TOML
}

# Strategy flasher: the new OS's four partitions laid into the old disk's
# swap (p5, a logical partition, as Debian's installer makes it; an MBR has
# no four free primary slots beside the old root); the numbers of boot,
# root and data are the image's.
write_flasher_config() { # <file> <sha256>
  cat >"$1" <<TOML
strategy = "flasher"

[image]
source = "/mnt/payload/new-os.img.gz"
sha256 = "$2"

[target]
disk = "/dev/vda"
spare_partition = 5
boot_partition = 1
root_partition = 2
data_partition = 4

[backup]
paths = ["/srv/app", "/etc/app.conf"]
script = "/usr/local/sbin/app-dump"
TOML
}

write_case_sh() { # <file> [extra ferry args…]
  local file=$1
  shift
  cat >"$file" <<SH
#!/bin/sh
# Runs the takeover; on a refusal (ferry exits non-zero) reboots so the
# harness sees the old OS come up again; else stage 2 reboots the machine.
/mnt/payload/ferry takeover run --yes --config /mnt/payload/takeover.toml \\
  --image /mnt/payload/new-os.img.gz $* </dev/null
rc=\$?
echo "FERRY-VM case: ferry exited \$rc"
if [ "\$rc" != 0 ]; then systemctl reboot; fi
SH
  chmod +x "$file"
}

serial_text() { tr -d '\r' 2>/dev/null <"$log"; }

# The serial log's last lines without systemd's start/stop chatter and ANSI
# colours, for a failed case's line (the whole log stays in $results).
serial_tail() {
  serial_text | sed 's/\x1b\[[0-9;]*m//g' |
    grep -vE '^\[ *(OK|DEPEND) *\] |^ +(Starting|Stopping|Unmounting|Deactivating|Activating) |systemd-shutdown\[1\]: |^\[ *[0-9.]+\] (reboot: Power down|ACPI: PM: )' |
    tail -n 30
}

# The first MiB of the case's disk (MBR, grub's boot code) against an
# image's: the old OS's while nothing was written to the disk, the new OS's
# after the flash. `old-boot`: the old OS's boot code, disk signature and
# grub core, the MBR's partition entries aside (strategy flasher rewrites
# the table with sfdisk, whose CHS fields follow the VM disk's geometry).
disk_head_is() { # old|old-boot|new
  local ref=$images/old-os.raw
  [ "$1" = new ] && ref=$new_raw
  rm -f "$work/head"
  if ! qemu-img dd -f qcow2 -O raw bs=65536 count=16 if="$overlay" of="$work/head" 2>/dev/null; then
    problems+=("cannot read the case's disk (qemu-img dd)")
  elif [ "$1" = old-boot ]; then
    cmp -s -n 446 "$work/head" "$ref" && cmp -s -i 510 -n $((1048576 - 510)) "$work/head" "$ref" ||
      problems+=("the old OS's boot code (MBR, grub core) changed")
  elif ! cmp -s -n 1048576 "$work/head" "$ref"; then
    problems+=("the disk's first MiB is not the $1 OS's")
  fi
}

wait_for_line() { # <regex> <seconds>: 0 once the serial log has it
  local deadline=$(($(date +%s) + $2))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    serial_text | grep -Eq -- "$1" && return 0
    kill -0 "$qemu_pid" 2>/dev/null || return 1
    sleep 1
  done
  return 1
}

monitor() { echo "$*" >"$monitor_pipe.in"; }

check_text=
want() { grep -Eq -- "$1" <<<"$check_text" || problems+=("missing: $1"); }
want_fixed() { grep -Fq -- "$1" <<<"$check_text" || problems+=("missing: $1"); }
want_none() { ! grep -Eq -- "$1" <<<"$check_text" || problems+=("unexpected: $1"); }
want_count() {
  local n
  n=$(grep -Ec -- "$1" <<<"$check_text")
  [ "$n" = "$2" ] || problems+=("$1: $n times, not $2")
}

# The new OS's report after a completed takeover (either strategy): its
# marker, the old OS's network, hostname, SSH host keys, authorized_keys and
# backed-up files (by sha256), the backup script's dump, status completed.
want_new_os_carried_over() {
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
}
# Runs a check on what the console said after the old OS's second boot.
after_reboot() {
  local all=$check_text
  check_text=$(awk '/FERRY-VM old-os up/ { n++ } n >= 2' <<<"$all")
  "$@"
  check_text=$all
}
# Runs a check on what the console said from the new OS's second boot on
# (a boot: the kernel's banner; the new OS's: its first FERRY-VM line).
after_new_reboot() {
  local all=$check_text
  check_text=$(awk '/Linux version / { boot++ } /FERRY-VM new-os / && !(boot in seen) { seen[boot] = 1; n++ } n >= 2' <<<"$all")
  "$@"
  check_text=$all
}

# ---------------------------------------------------------------- run
run_vm() { # <disk qcow2> <payload image or ""> <timeout>; sets vm_end
  local args=(
    -nodefaults -display none -m "$VM_MEMORY" -smp 2 -accel tcg,thread=multi
    -serial "file:$log" -monitor "pipe:$monitor_pipe"
    -drive "file=$1,if=none,id=disk0,format=qcow2,cache=unsafe"
    -device virtio-blk-pci,drive=disk0,addr=0x4,bootindex=0
    -netdev user,id=n0 -device virtio-net-pci,netdev=n0,addr=0x3,romfile=
    -device i6300esb -action watchdog=reset
  )
  [ -z "$2" ] || args+=(-drive "file=$2,if=none,id=disk1,format=raw,readonly=on"
    -device virtio-blk-pci,drive=disk1,addr=0x5)
  rm -f "$monitor_pipe.in" "$monitor_pipe.out"
  mkfifo "$monitor_pipe.in" "$monitor_pipe.out"
  qemu-system-x86_64 "${args[@]}" </dev/null >"$results/$case.qemu" 2>&1 &
  qemu_pid=$!
  qemu_pids+=("$qemu_pid")
  # qemu blocks on a full monitor pipe: keep it drained.
  cat "$monitor_pipe.out" >>"$results/$case.monitor" 2>/dev/null &
  local drain=$! during=
  if declare -F case_during >/dev/null; then
    case_during &
    during=$!
  fi
  local deadline=$(($(date +%s) + $3))
  vm_end=poweroff
  while kill -0 "$qemu_pid" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      vm_end=timeout
      kill "$qemu_pid" 2>/dev/null
      break
    fi
    sleep 1
  done
  wait "$qemu_pid" 2>/dev/null
  [ -z "$during" ] || { kill "$during" 2>/dev/null; wait "$during" 2>/dev/null; }
  kill "$drain" 2>/dev/null
  wait "$drain" 2>/dev/null
  rm -f "$monitor_pipe.in" "$monitor_pipe.out"
}

make_payload() { # <case> <image>: ferry, the new OS image, and the case's files
  local dir=$work/payload-$1
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$ferry_bin" "$dir/ferry"
  ln "${CASE_IMAGE:-$new_gz}" "$dir/new-os.img.gz" 2>/dev/null || cp "${CASE_IMAGE:-$new_gz}" "$dir/new-os.img.gz"
  case_payload "$dir" || return 1
  local kib
  kib=$(du -sk "$dir" | cut -f1)
  rm -f "$2"
  truncate -s $(((kib + kib / 5 + 16384) * 1024)) "$2"
  mkfs.ext4 -q -F -L payload -d "$dir" "$2" || return 1
  rm -rf "$dir"
}

ok=0 boot_failed=
cases_start=$(date +%s)
for case in "${cases[@]}"; do
  unset -f case_payload case_during case_check
  CASE_DISK= CASE_TIMEOUT=600 CASE_IMAGE=
  # shellcheck source=/dev/null
  . "$here/cases/$case.sh"
  log=$results/$case.log
  monitor_pipe=$work/$case.monitor
  problems=()
  rm -f "$log" "$results/$case.monitor"
  start=$(date +%s)
  if [ -n "$boot_failed" ] && [[ $case != boot-* ]]; then
    echo "$case FAILED 0s: not run: the boot case(s) failed ($boot_failed)"
    continue
  fi
  case $CASE_DISK in
    old) base=$images/old-os.raw ;;
    new) base=$new_raw ;;
  esac
  overlay=$work/$case.qcow2
  payload=
  if ! qemu-img create -q -f qcow2 -b "$base" -F raw "$overlay"; then
    problems+=("qemu-img create failed")
  elif declare -F case_payload >/dev/null && ! make_payload "$case" "$work/$case.payload"; then
    problems+=("the payload disk was not made")
  else
    declare -F case_payload >/dev/null && payload=$work/$case.payload
    run_vm "$overlay" "$payload" "$CASE_TIMEOUT"
    [ "$vm_end" = poweroff ] || problems+=("no poweroff within ${CASE_TIMEOUT}s: qemu killed")
    check_text=$(serial_text)
    case_check
  fi
  rm -f "$overlay" "$work/$case.payload"
  seconds=$(($(date +%s) - start))
  if [ ${#problems[@]} = 0 ]; then
    ok=$((ok + 1))
    echo "$case ok ${seconds}s"
  else
    [[ $case != boot-* ]] || boot_failed+="${boot_failed:+ }$case"
    echo "$case FAILED ${seconds}s (serial log: $log)"
    printf '  %s\n' "${problems[@]}"
    echo "  --- last serial lines"
    serial_tail | sed 's/^/  | /'
    [ ! -s "$results/$case.qemu" ] || sed 's/^/  qemu: /' "$results/$case.qemu"
  fi
done
echo "takeover-vm: the cases took $(($(date +%s) - cases_start))s, the whole script $(($(date +%s) - script_start))s"
echo "takeover-vm: $ok of ${#cases[@]} cases ok"
[ "$ok" = "${#cases[@]}" ]
