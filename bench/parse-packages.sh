#!/usr/bin/env bash
# Benchmark: read sid's main amd64 Packages file into typed records with
# ferry-deb, and iterate the same file with apt's own C++ parser
# (python3-apt's apt_pkg.TagFile), in one run; print both and the ratio.
#
# usage: bench/parse-packages.sh [DATA_DIR] [ROUNDS]
#   DATA_DIR defaults to ../shared/data/debian beside the checkout
#   (or $FERRY_DEBIAN_DATA); the file is decompressed beforehand, and both
#   sides take the best of ROUNDS (default 5) runs over the in-memory-cached
#   file.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${FERRY_DEBIAN_DATA:-../shared/data/debian}}
rounds=${2:-5}
packages_xz="$data/sid-main-amd64-Packages.xz"
if [ ! -f "$packages_xz" ]; then
  echo "skipped: $packages_xz not found (pass DATA_DIR or set FERRY_DEBIAN_DATA)"
  exit 0
fi
if ! /usr/bin/python3 -c 'import apt_pkg' 2>/dev/null; then
  echo "python3-apt is missing: apt-get install python3-apt" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
xz -dc "$packages_xz" > "$work/Packages"
size=$(stat -c %s "$work/Packages")

cargo build --quiet --release -p ferry-deb --example parse_packages
ferry_json=$(./target/release/examples/parse_packages "$work/Packages" "$rounds")

apt_json=$(/usr/bin/python3 - "$work/Packages" "$rounds" <<'PY'
import json, sys, time
import apt_pkg
apt_pkg.init_system()
path, rounds = sys.argv[1], int(sys.argv[2])
RELATIONS = ("Depends", "Pre-Depends", "Recommends", "Suggests", "Conflicts",
             "Breaks", "Replaces", "Provides", "Enhances")

def best_of(work):
    best, value = float("inf"), None
    for _ in range(rounds):
        start = time.perf_counter()
        value = work()
        best = min(best, time.perf_counter() - start)
    return best, value

def iterate():
    with open(path) as f:
        return sum(1 for _ in apt_pkg.TagFile(f))

def typed():
    records = []
    with open(path) as f:
        for s in apt_pkg.TagFile(f):
            rel = {k: apt_pkg.parse_depends(s[k], False) for k in RELATIONS if k in s}
            records.append((s["Package"], s["Version"], s["Architecture"], s.get("Source"), rel))
    return len(records)

split, count = best_of(iterate)
typed_s, typed_count = best_of(typed)
print(json.dumps({"packages": count, "split_seconds": split, "typed_seconds": typed_s}))
PY
)

/usr/bin/python3 - "$ferry_json" "$apt_json" "$size" "$(nproc)" <<'PY'
import json, sys
ferry, apt, size, cores = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
print(f"sid main amd64 Packages: {size/1e6:.1f} MB, {ferry['packages']} stanzas, {cores} cores, best of rounds")
print(f"{'':44}{'ferry-deb':>12}{'apt_pkg':>12}{'ratio':>9}")
for key, label in (("split_seconds", "paragraphs and fields only"),
                   ("typed_seconds", "typed records, all relations parsed")):
    print(f"  {label:42}{ferry[key]*1000:9.1f} ms{apt[key]*1000:9.1f} ms{apt[key]/ferry[key]:8.1f}x")
print(f"  bar: typed records under 150 ms -> {'met' if ferry['typed_seconds'] < 0.150 else 'MISSED'}")
if not (ferry["packages"] == ferry["paragraphs"] == apt["packages"]):
    sys.exit(f"stanza counts differ: ferry {ferry['packages']}/{ferry['paragraphs']}, apt {apt['packages']}")
PY
