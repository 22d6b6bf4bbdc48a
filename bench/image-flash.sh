#!/usr/bin/env bash
# Benchmark: flashing a gzip-compressed 2 GiB disk image that is about a
# quarter data, three ways, in one run, to the same loop device, with the
# page cache dropped before each:
#   zcat | dd bs=4M, then a read-back comparison (what a careful person does)
#   bmaptool copy --bmap (Debian's bmap-tools; verifies every range)
#   ferry image flash --bmap (verifies every range, fsyncs)
# Prints each time and ferry's ratio to the other two; the bar is ferry
# <= 1.0x bmaptool and <= 1/3 of zcat | dd.
# usage: sudo bench/image-flash.sh [SIZE_MIB] (default 2048); needs root for
# the loop device and for dropping the page cache.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-2048}
data_mib=$((size_mib / 4))
for tool in sfdisk mkfs.ext4 bmaptool losetup gzip; do
  command -v "$tool" >/dev/null || { echo "image-flash: $tool is missing (apt-get install fdisk e2fsprogs bmap-tools mount gzip)"; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "image-flash: run as root (loop device, drop_caches)"; exit 2; }
work=$(mktemp -d /var/tmp/ferry-bench-image.XXXXXX)
dev=""
cleanup() { [ -n "$dev" ] && losetup -d "$dev" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

cargo build --quiet --release -p ferry
ferry=$PWD/target/release/ferry

echo "== building a ${size_mib} MiB image with ${data_mib} MiB of files"
img=$work/disk.img
truncate -s "${size_mib}M" "$img"
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q "$img"
mkdir -p "$work/content"
# Real files (shared libraries), so the data compresses as images do.
# (tar stops on SIGPIPE once head has enough: not a failure)
{ tar -C /usr/lib -cf - x86_64-linux-gnu 2>/dev/null || true; } | head -c "$((data_mib * 1024 * 1024))" >"$work/content/lib.tar"
part_sectors=$(( (size_mib * 2048) - 2048 ))
truncate -s "$((part_sectors * 512))" "$work/part.ext4"
mkfs.ext4 -q -F -d "$work/content" "$work/part.ext4"
dd if="$work/part.ext4" of="$img" bs=4M seek=1M oflag=seek_bytes conv=notrunc,sparse status=none
rm -rf "$work/content" "$work/part.ext4"
bmaptool -q create -o "$work/disk.img.bmap" "$img"
gzip -6 -k "$img"
gz=$img.gz
image_bytes=$(stat -c %s "$img")
echo "image: $(du -m --apparent-size "$img" | cut -f1) MiB, $(du -m "$img" | cut -f1) MiB allocated, gz $(du -m "$gz" | cut -f1) MiB"
rm -f "$img"

truncate -s "$((size_mib + 64))M" "$work/target"
dev=$(losetup -f --show "$work/target")

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
timed() { # name command...
  local name=$1; shift
  drop
  local start end
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  python3 -c "print(f'$name: {$end - $start:.2f} s')"
  python3 -c "print($end - $start)" >"$work/time.$name"
}

dd_and_check() {
  zcat "$gz" | dd of="$dev" bs=4M conv=fsync status=none
  drop
  cmp -n "$image_bytes" <(zcat "$gz") "$dev"
}
echo "== flashing to $dev"
timed dd dd_and_check
timed bmaptool bmaptool -q copy --bmap "$work/disk.img.bmap" "$gz" "$dev"
timed ferry "$ferry" image flash "$gz" "$dev" --bmap "$work/disk.img.bmap"
drop
cmp -n "$image_bytes" <(zcat "$gz") "$dev" && echo "ferry's result equals the image"

python3 - "$work" <<'PY'
import sys
w = sys.argv[1]
t = {n: float(open(f"{w}/time.{n}").read()) for n in ("dd", "bmaptool", "ferry")}
print(f"image-flash: ferry {t['ferry']:.2f} s, bmaptool {t['bmaptool']:.2f} s, zcat|dd+check {t['dd']:.2f} s; "
      f"ferry/bmaptool {t['ferry']/t['bmaptool']:.2f}x, ferry/dd {t['ferry']/t['dd']:.2f}x")
PY
