#!/usr/bin/env bash
# Benchmark: `ferry check` (release build) and dose-distcheck on the same
# decompressed Packages file, in one run: wall time and peak memory
# (/usr/bin/time), broken counts, the differences between the two broken
# sets, and the ratios; then ferry with --explain on every broken package.
# ferry runs RUNS times (default 3; the machine is shared, so the spread
# is shown), dose once (it takes half a minute or more).
# usage: bench/check-vs-dose.sh [DATA_DIR] [SUITE...]   (default: sid)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${FERRY_DEBIAN_DATA:-../shared/data/debian}}
shift || true
suites=("${@:-sid}")
runs=${RUNS:-3}
for tool in dose-distcheck /usr/bin/time xz python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install dose-distcheck time xz-utils python3)" >&2; exit 1; }
done
cargo build --quiet --release -p ferry
ferry=./target/release/ferry
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# measure OUTPUT COMMAND...: prints "seconds KiB" of one run.
measure() {
  local out=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$out" 2>/dev/null || true
  tail -n 1 "$work/time"
}

# broken YAML: the `name version arch` of each broken package of a
# dose-distcheck style report, sorted.
broken() {
  python3 - "$1" <<'PY'
import sys
p = v = a = None
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("  package: "): p = line[11:]
    elif line.startswith("  version: "): v = line[11:]
    elif line.startswith("  architecture: "): a = line[16:]
    elif line == "  status: broken": print(p, v, a)
PY
}

for suite in "${suites[@]}"; do
  xz_file="$data/$suite-main-amd64-Packages.xz"
  if [ ! -f "$xz_file" ]; then
    echo "skipped $suite: $xz_file not found"
    continue
  fi
  xz -dc "$xz_file" > "$work/Packages"
  : > "$work/ferry.runs"; : > "$work/explain.runs"
  for _ in $(seq "$runs"); do
    measure "$work/ferry.yaml" $ferry check --arch amd64 --failures --format dose-yaml "$work/Packages" >> "$work/ferry.runs"
    measure "$work/explain.yaml" $ferry check --arch amd64 --failures --explain --format dose-yaml "$work/Packages" >> "$work/explain.runs"
  done
  measure "$work/dose.yaml" dose-distcheck --deb-native-arch=amd64 -f "deb://$work/Packages" > "$work/dose.run"
  broken "$work/ferry.yaml" | sort > "$work/ferry.broken"
  broken "$work/dose.yaml" | sort > "$work/dose.broken"
  differences=$(comm -3 "$work/ferry.broken" "$work/dose.broken" | wc -l)
  packages=$(grep -c '^Package: ' "$work/Packages")
  python3 - "$suite" "$packages" "$work" "$differences" <<'PY'
import statistics, sys
suite, n, work, differences = sys.argv[1:]
def runs(name):
    return [tuple(map(float, l.split())) for l in open(f"{work}/{name}") if l.strip()]
def summary(rs):
    secs = sorted(s for s, _ in rs)
    return min(secs), statistics.median(secs), max(k for _, k in rs) / 1024
f_min, f_med, f_mb = summary(runs("ferry.runs"))
e_min, e_med, e_mb = summary(runs("explain.runs"))
(d_s, d_kib), = runs("dose.run")
d_mb = d_kib / 1024
count = lambda name: sum(1 for _ in open(f"{work}/{name}"))
print(f"{suite} main amd64: {n} packages")
print(f"  ferry check            {f_med:6.2f} s (best {f_min:.2f})  {f_mb:5.0f} MB  {count('ferry.broken')} broken")
print(f"  ferry check --explain  {e_med:6.2f} s (best {e_min:.2f})  {e_mb:5.0f} MB  ({(e_med / f_med - 1) * 100:+.0f}% over check)")
print(f"  dose-distcheck         {d_s:6.2f} s               {d_mb:5.0f} MB  {count('dose.broken')} broken")
print(f"  differences in the broken sets: {differences}")
print(f"  ferry is {d_s / f_med:.0f}x faster (median run) and uses {d_mb / f_mb:.1f}x less memory")
PY
done
