#!/usr/bin/env bash
# Replays every kept fuzz corpus through its target once (no new fuzzing), so
# an input that once crashed a parser stays fixed. Needs cargo-fuzz; the
# stable toolchain builds the sanitizer flags with RUSTC_BOOTSTRAP=1.
# To fuzz for real: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET corpus/TARGET
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
  if [ "${CI:-}" = true ]; then
    cargo install --locked cargo-fuzz
  else
    echo "skipped: cargo-fuzz is not installed (cargo install cargo-fuzz)"
    exit 0
  fi
fi
export RUSTC_BOOTSTRAP=1
passed=0 failed=0
for target in $(cargo fuzz list); do
  if [ ! -d "corpus/$target" ]; then
    echo "FAIL $target: no corpus kept in fuzz/corpus/$target"
    failed=$((failed + 1))
    continue
  fi
  if cargo fuzz run -O "$target" "corpus/$target" -- -runs=0 >"/tmp/fuzz-replay-$target.log" 2>&1; then
    echo "PASS $target ($(ls "corpus/$target" | wc -l) inputs)"
    passed=$((passed + 1))
  else
    echo "FAIL $target: see /tmp/fuzz-replay-$target.log"
    tail -20 "/tmp/fuzz-replay-$target.log"
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
