#!/usr/bin/env bash
# Benchmark: `ferry check` (release build) and dose-distcheck on the same
# decompressed Packages file, in one run: wall time, peak memory, broken
# count and the ratio; then ferry with --explain on every broken package.
# usage: bench/check-vs-dose.sh [DATA_DIR] [SUITE...]   (default: sid)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${FERRY_DEBIAN_DATA:-../shared/data/debian}}
shift || true
suites=("${@:-sid}")
for tool in dose-distcheck /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install dose-distcheck time)" >&2; exit 1; }
done
cargo build --quiet --release -p ferry
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

measure() { # label, output file, command...
  local label=$1 out=$2; shift 2
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$out" 2>/dev/null || true
  read -r seconds kib < <(tail -n 1 "$work/time")
  echo "$label $seconds $kib"
}

for suite in "${suites[@]}"; do
  xz_file="$data/$suite-main-amd64-Packages.xz"
  if [ ! -f "$xz_file" ]; then
    echo "skipped $suite: $xz_file not found"
    continue
  fi
  xz -dc "$xz_file" > "$work/Packages"
  read -r _ f_s f_kib < <(measure ferry "$work/ferry.txt" ./target/release/ferry check --arch amd64 --failures "$work/Packages")
  read -r _ e_s e_kib < <(measure ferry-explain "$work/explain.txt" ./target/release/ferry check --arch amd64 --failures --explain "$work/Packages")
  read -r _ d_s d_kib < <(measure dose "$work/dose.yaml" dose-distcheck --deb-native-arch=amd64 -f "deb://$work/Packages")
  f_broken=$(tail -1 "$work/ferry.txt" | cut -d' ' -f1)
  d_broken=$(grep -oP '^broken-packages: \K[0-9]+' "$work/dose.yaml")
  packages=$(grep -c '^Package: ' "$work/Packages")
  python3 - "$suite" "$packages" "$f_s" "$f_kib" "$e_s" "$e_kib" "$d_s" "$d_kib" "$f_broken" "$d_broken" <<'PY'
import sys
suite, n, fs, fk, es, ek, ds, dk, fb, db = sys.argv[1:]
fs, es, ds = float(fs), float(es), float(ds)
print(f"{suite} main amd64: {n} packages")
print(f"  ferry check            {fs:7.2} s  {int(fk)/1024:7.0} MB  {fb} broken")
print(f"  ferry check --explain  {es:7.2} s  {int(ek)/1024:7.0} MB  (+{(es/fs-1)*100:.0f}%)")
print(f"  dose-distcheck         {ds:7.2} s  {int(dk)/1024:7.0} MB  {db} broken")
print(f"  ratio: ferry is {ds/fs:.0f}x faster, uses {int(dk)/int(fk):.1f}x less memory")
PY
done
