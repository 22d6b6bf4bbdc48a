#!/usr/bin/env bash
# Benchmark: `ferry archive excuses` on the full sid -> forky amd64 archive
# of ../shared/data/debian/ (or FERRY_DEBIAN_DATA), laid out as a mirror's
# suite directories with symlinks; prints the time, the peak memory and the
# verdict counts. There is no britney here to run side by side (it is not
# packaged in Debian); dose-distcheck on the written result is the oracle,
# in `cargo test -p ferry-archive --test real_data`.
# The figure before each trial's universe was cut from one resolved pool
# per architecture is printed beside the new one (issue 18's bar: 20 s and
# 1 GB on 2 cores). CPU seconds are shown too, as the machine is shared.
# usage: bench/archive-excuses.sh
set -euo pipefail
previous="57-60 s wall (~57 s CPU), peak 855 MB: every trial resolved its own universe"

cd "$(dirname "$0")/.."
data=${FERRY_DEBIAN_DATA:-../shared/data/debian}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for suite in sid forky; do
  mkdir -p "$work/$suite/main/binary-amd64" "$work/$suite/main/source"
  ln -s "$(realpath "$data/$suite-main-amd64-Packages.xz")" "$work/$suite/main/binary-amd64/Packages.xz"
  ln -s "$(realpath "$data/$suite-main-Sources.xz")" "$work/$suite/main/source/Sources.xz"
done
cargo build --quiet --release -p ferry
/usr/bin/time -o "$work/time" \
  -f 'ferry archive excuses sid -> forky: %e s wall, %U s user + %S s sys CPU, peak %M KB' \
  "${CARGO_TARGET_DIR:-target}/release/ferry" --json archive excuses --from "$work/sid" --to "$work/forky" \
  > "$work/excuses.json" || true
tail -n 1 "$work/time"
echo "  previously: $previous"
python3 - "$work/excuses.json" <<'PY'
import collections, json, sys
d = json.load(open(sys.argv[1]))
ex = d["excuses"]
print(f"{len(ex)} candidates, {sum(e['migrates'] for e in ex)} migrate")
blocked = collections.Counter(
    " + ".join(sorted({r["kind"] for r in e["reasons"]})) for e in ex if not e["migrates"])
for kind, n in blocked.most_common():
    print(f"  blocked, {kind}: {n}")
print(f"broken before {d['broken_before']}, after {d['broken_after']}, dropped {len(d['dropped'])}")
PY
