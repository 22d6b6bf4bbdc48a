#!/bin/sh
# Runs inside a freshly made image tree (chroot): trims the kernel's modules
# to what a virtio qemu VM needs, then rebuilds the initramfs from that list,
# so each image stays a few hundred MB.
set -eu
keep="virtio virtio_ring virtio_pci virtio_pci_modern_dev virtio_pci_legacy_dev virtio_blk
virtio_net net_failover failover virtio_scsi virtio_rng virtio_console virtio_balloon
ext4 jbd2 mbcache crc16 crc32c_generic crc32c_intel libcrc32c vfat fat msdos nls_cp437 nls_ascii
nls_utf8 nls_iso8859_1 loop i6300esb squashfs overlay af_packet autofs4"
for dir in /lib/modules/*/; do
  version=$(basename "$dir")
  # Closure of the kept modules over modules.dep, then everything else goes.
  want=$(mktemp)
  for m in $keep; do echo "$m"; done >"$want"
  awk -v want="$want" '
    BEGIN { while ((getline m < want) > 0) { w[m] = 1 } }
    function base(p) { n = split(p, a, "/"); sub(/\.ko(\.[a-z]+)?$/, "", a[n]); gsub(/-/, "_", a[n]); return a[n] }
    { line[NR] = $0 }
    END {
      changed = 1
      while (changed) {
        changed = 0
        for (i = 1; i <= NR; i++) {
          split(line[i], f, /:? +|:$/)
          if (!(base(f[1]) in w)) continue
          if (!(f[1] in out)) { out[f[1]] = 1; changed = 1 }
          nd = split(line[i], d, / +/)
          for (j = 2; j <= nd; j++) if (d[j] != "" && !(base(d[j]) in w)) { w[base(d[j])] = 1; changed = 1 }
        }
      }
      for (p in out) print p
    }' "$dir/modules.dep" | sed 's/:$//' | sort >"$want.keep"
  (cd "$dir" && find kernel -name '*.ko*' | sort | comm -23 - "$want.keep" | xargs -r rm -f)
  find "$dir/kernel" -type d -empty -delete
  rm -f "$want" "$want.keep"
  depmod "$version"
done
cat >/etc/initramfs-tools/conf.d/ferry-vm <<'CONF'
MODULES=list
CONF
printf '%s\n' virtio_pci virtio_blk virtio_scsi virtio_net ext4 >/etc/initramfs-tools/modules
update-initramfs -u -k all
rm -rf /var/cache/apt/*.bin /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/*
