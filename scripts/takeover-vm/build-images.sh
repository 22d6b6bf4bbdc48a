#!/usr/bin/env bash
# Builds the takeover VM test's disk images into OUT (the caller caches OUT
# by the hash of this directory's files):
#   old-os.raw      the machine before the takeover, laid out as Debian's
#                   installer does on MBR: p1 ext4 root (/boot inside), p2
#                   extended, p5 swap (1.2 GiB: strategy flasher lays the new
#                   OS's four partitions into it, as logical ones); bookworm
#                   minbase, grub (grub.cfg sourcing custom.cfg as Debian's
#                   41_custom does), sfdisk, ifupdown static network,
#                   hostname, SSH host keys, files to back up.
#   new-os.raw      the OS the takeover installs, balena-like: p1 boot,
#                   p2 root, p3 state, p4 data (ext4, by label); ferry is put
#                   into it later (test-takeover-vm.sh), as it changes often.
#   new-os-noboot.img.gz  the same without a kernel on p1: grub cannot load
#                   it (grub's fallback path).
#   new-os-panic.img.gz   the same with an /sbin/init that exits at once: the
#                   kernel panics (panic=10 reboots).
#   identity.sums   sha256 of the old OS's host keys and authorized_keys.
# usage: build-images.sh OUT MIRROR-URI SIGNED-BY|- DEB-CACHE
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
out=$1 mirror=$2 signed_by=$3 debs=$4
mkdir -p "$out" "$debs"
work=$(mktemp -d /dev/shm/ferry-vm-build.XXXXXX 2>/dev/null || mktemp -d)
loops=() mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[i]}" 2>/dev/null || true; done
  for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

log() { echo "takeover-vm build: $*" >&2; }

# A bookworm minbase tree in DIR with PACKAGES; .debs cached in $debs.
make_tree() { # <dir> <packages,comma,separated>
  local keyring=()
  [ "$signed_by" = - ] || keyring=(--keyring="$signed_by")
  TMPDIR=$work mmdebstrap --variant=minbase --mode=root --quiet "${keyring[@]}" \
    --include="$2" \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
    --setup-hook="cp -a $debs/. \"\$1\"/var/cache/apt/archives/ 2>/dev/null || true" \
    --essential-hook='mkdir -p "$1"/etc/initramfs-tools/conf.d && echo MODULES=list >"$1"/etc/initramfs-tools/conf.d/ferry-vm' \
    --customize-hook="cp -a \"\$1\"/var/cache/apt/archives/*.deb $debs/ 2>/dev/null || true" \
    --customize-hook="cp $here/customize-common.sh \"\$1\"/tmp/" \
    --customize-hook='chroot "$1" sh /tmp/customize-common.sh >/dev/null && rm "$1"/tmp/customize-common.sh' \
    --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb' \
    bookworm "$1" "$mirror"
}

# Attaches IMAGE with its partitions; the device is left in $dev (not
# printed: a subshell would lose it from the cleanup's list).
attach() {
  dev=$(losetup -P -f --show "$1")
  loops+=("$dev")
  part_nodes "$dev"
}
detach() { losetup -d "$1"; loops=("${loops[@]/$1/}"); }
mount_at() { mount "$1" "$2"; mounts+=("$2"); }
unmount() { umount "$1"; mounts=("${mounts[@]/$1/}"); }

kernel_of() { (cd "$1/boot" && ls vmlinuz-* | sort -V | tail -n 1 | sed 's/^vmlinuz-//'); }

grub_cfg() { # <kernel path> <initrd path> <root=…> <title> [fs uuid of the kernel's filesystem]
  cat <<CFG
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
if [ -s \$prefix/grubenv ]; then load_env; fi
if [ "\${next_entry}" ]; then
  set default="\${next_entry}"
  set next_entry=
  save_env next_entry
else
  set default=0
fi
menuentry '$4' {${5:+
  insmod part_msdos
  insmod ext2
  set root='hd0,msdos1'
  search --no-floppy --fs-uuid --set=root $5}
  linux $1 $3 ro console=ttyS0,115200 panic=10
  initrd $2
}
CFG
}

# The serial console is the test's channel: a getty there would hang up the
# tty (vhangup) under the units that report on it, and their lines be lost.
no_serial_getty() { # <tree>
  ln -sf /dev/null "$1/etc/systemd/system/serial-getty@ttyS0.service"
}

# ---------------------------------------------------------------- old OS
build_old() {
  local tree=$work/old
  log "old OS tree (mmdebstrap)"
  make_tree "$tree" linux-image-amd64,initramfs-tools,systemd-sysv,udev,kmod,ifupdown,iproute2,openssh-client,grub-pc,fdisk,zstd
  cp -a "$here/old-os/." "$tree/"
  echo field-unit-7 >"$tree/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\tfield-unit-7\n' >"$tree/etc/hosts"
  rm -f "$tree"/etc/ssh/ssh_host_*
  mkdir -p "$tree/etc/ssh" "$tree/root/.ssh"
  ssh-keygen -q -t ed25519 -N '' -C root@field-unit-7 -f "$tree/etc/ssh/ssh_host_ed25519_key"
  ssh-keygen -q -t rsa -b 3072 -N '' -C root@field-unit-7 -f "$tree/etc/ssh/ssh_host_rsa_key"
  ssh-keygen -q -t ed25519 -N '' -C operator@ferry-test -f "$work/operator"
  cp "$work/operator.pub" "$tree/root/.ssh/authorized_keys"
  chmod 700 "$tree/root/.ssh"
  chmod 600 "$tree/root/.ssh/authorized_keys"
  # Files to back up: a binary, an odd name, a symlink.
  mkdir -p "$tree/srv/app/data"
  head -c 65536 /dev/urandom >"$tree/srv/app/data/blob.bin"
  printf 'odd\n' >"$tree/srv/app/data/we ird -name's [1].txt"
  printf 'version=1\n' >"$tree/srv/app/VERSION"
  ln -s data/blob.bin "$tree/srv/app/current"
  printf 'listen=0.0.0.0:8080\nname=field-unit-7\n' >"$tree/etc/app.conf"
  echo "old OS of the ferry takeover VM test" >"$tree/etc/ferry-old-os"
  chroot "$tree" systemctl enable ferry-vm-case.service >/dev/null 2>&1
  no_serial_getty "$tree"
  chroot "$tree" systemctl set-default multi-user.target >/dev/null 2>&1
  (cd "$tree" && sha256sum etc/ssh/ssh_host_ed25519_key.pub etc/ssh/ssh_host_rsa_key.pub root/.ssh/authorized_keys \
    srv/app/data/blob.bin "srv/app/data/we ird -name's [1].txt" srv/app/VERSION etc/app.conf) >"$out/identity.sums.new"

  log "old OS disk"
  local img=$out/old-os.raw.new dev k
  rm -f "$img"
  truncate -s 2560M "$img"
  sfdisk -q "$img" <<'PART'
label: dos
start=2048, size=1279MiB, type=83, bootable
type=5
type=82
PART
  attach "$img"
  # The logical partition's node can come after p1's.
  for _ in $(seq 30); do [ -b "${dev}p5" ] && break; sleep 0.1; done
  [ -b "${dev}p5" ] || partx -a "$dev" 2>/dev/null || true
  mkfs.ext4 -q -L oldroot "${dev}p1"
  mkswap -L oldswap "${dev}p5" >/dev/null
  local uuid
  uuid=$(blkid -s UUID -o value "${dev}p1")
  # The swap is nofail with a short wait: after a flasher takeover fell
  # back, its space holds the new OS and the label is gone; systemd would
  # wait 90 s for it at every boot (see the README).
  printf 'UUID=%s / ext4 errors=remount-ro 0 1\nLABEL=oldswap none swap sw,nofail,x-systemd.device-timeout=3s 0 0\n' "$uuid" >"$tree/etc/fstab"
  mkdir -p "$work/mnt"
  mount_at "${dev}p1" "$work/mnt"
  tar -C "$tree" -cf - . | tar -C "$work/mnt" -xpf -
  k=$(kernel_of "$work/mnt")
  grub-install --target=i386-pc --boot-directory="$work/mnt/boot" "$dev" 2>&1 | grep -v '^Installation finished' >&2 || true
  [ -f "$work/mnt/boot/grub/i386-pc/core.img" ] || { log "grub-install failed"; return 1; }
  {
    # Its entry finds its own root, as each of Debian's does: an entry run
    # before it (ferry's, when grub falls back) may have moved \$root.
    grub_cfg "/boot/vmlinuz-$k" "/boot/initrd.img-$k" "root=UUID=$uuid" "old OS (field-unit-7)" "$uuid"
    # Debian's /etc/grub.d/41_custom, word for word: strategy flasher's
    # entry, fallback and committed default come in through custom.cfg.
    cat <<'CFG'
if [ -f ${config_directory}/custom.cfg ]; then
  source ${config_directory}/custom.cfg
elif [ -z "${config_directory}" -a -f $prefix/custom.cfg ]; then
  source $prefix/custom.cfg
fi
CFG
  } >"$work/mnt/boot/grub/grub.cfg"
  grub-editenv "$work/mnt/boot/grub/grubenv" create
  unmount "$work/mnt"
  detach "$dev"
  mv "$img" "$out/old-os.raw"
  mv "$out/identity.sums.new" "$out/identity.sums"
  rm -rf "$tree"
}

# ---------------------------------------------------------------- new OS
build_new() {
  local tree=$work/new
  log "new OS tree (mmdebstrap)"
  make_tree "$tree" linux-image-amd64,initramfs-tools,systemd-sysv,udev,kmod,network-manager,iproute2,zstd
  cp -a "$here/new-os/." "$tree/"
  echo "new OS of the ferry takeover VM test" >"$tree/etc/ferry-new-os"
  echo balena-like >"$tree/etc/hostname"
  mkdir -p "$tree/mnt/data" "$tree/mnt/state"
  cat >"$tree/etc/fstab" <<'FSTAB'
LABEL=root / ext4 errors=remount-ro 0 1
LABEL=boot /boot ext4 defaults 0 2
LABEL=state /mnt/state ext4 defaults,nofail 0 2
LABEL=data /mnt/data ext4 defaults,nofail 0 2
FSTAB
  chroot "$tree" systemctl enable ferry-vm-confirm.service ferry-vm-report.service NetworkManager-wait-online.service >/dev/null 2>&1
  no_serial_getty "$tree"
  chroot "$tree" systemctl set-default multi-user.target >/dev/null 2>&1

  log "new OS disk"
  local img=$out/new-os.raw.new dev k
  rm -f "$img"
  truncate -s 1024M "$img"
  sfdisk -q "$img" <<'PART'
label: dos
start=2048, size=100MiB, type=83, bootable
size=779MiB, type=83
size=16MiB, type=83
size=128MiB, type=83
PART
  attach "$img"
  mkfs.ext4 -q -L boot "${dev}p1"
  mkfs.ext4 -q -L root "${dev}p2"
  mkfs.ext4 -q -L state "${dev}p3"
  mkfs.ext4 -q -L data "${dev}p4"
  mkdir -p "$work/mnt"
  mount_at "${dev}p2" "$work/mnt"
  tar -C "$tree" --exclude=./boot -cf - . | tar -C "$work/mnt" -xpf -
  mkdir -p "$work/mnt/boot"
  mount_at "${dev}p1" "$work/mnt/boot"
  tar -C "$tree/boot" -cf - . | tar -C "$work/mnt/boot" -xpf -
  k=$(kernel_of "$work/mnt")
  grub-install --target=i386-pc --boot-directory="$work/mnt/boot" "$dev" 2>&1 | grep -v '^Installation finished' >&2 || true
  [ -f "$work/mnt/boot/grub/i386-pc/core.img" ] || { log "grub-install failed"; return 1; }
  # p1 is /boot in the new OS: paths from p1's root.
  grub_cfg "/vmlinuz-$k" "/initrd.img-$k" "root=LABEL=root" "new OS (balena-like)" >"$work/mnt/boot/grub/grub.cfg"
  grub-editenv "$work/mnt/boot/grub/grubenv" create
  unmount "$work/mnt/boot"
  unmount "$work/mnt"
  detach "$dev"

  log "new OS variant that does not boot (no kernel on p1)"
  cp --sparse=always "$img" "$work/noboot.raw"
  attach "$work/noboot.raw"
  mount_at "${dev}p1" "$work/mnt"
  rm -f "$work/mnt"/vmlinuz-*
  unmount "$work/mnt"
  detach "$dev"
  gzip -1 -c "$work/noboot.raw" >"$out/new-os-noboot.img.gz"
  rm -f "$work/noboot.raw"

  log "new OS variant whose init exits at once (the kernel panics)"
  cp --sparse=always "$img" "$work/panic.raw"
  attach "$work/panic.raw"
  mount_at "${dev}p2" "$work/mnt"
  rm -f "$work/mnt/usr/sbin/init"
  printf '#!/bin/sh\necho "FERRY-VM new-os init exits at once"\nexit 1\n' >"$work/mnt/usr/sbin/init"
  chmod 0755 "$work/mnt/usr/sbin/init"
  unmount "$work/mnt"
  detach "$dev"
  gzip -1 -c "$work/panic.raw" >"$out/new-os-panic.img.gz"
  rm -f "$work/panic.raw"
  mv "$img" "$out/new-os.raw"
  rm -rf "$tree"
}

start=$(date +%s)
[ -f "$out/old-os.raw" ] || build_old
[ -f "$out/new-os.raw" ] || build_new
log "images built in $(($(date +%s) - start)) s"
