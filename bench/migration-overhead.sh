#!/usr/bin/env bash
# Benchmark: the organisation move of the end-to-end tests done by
# `ferry run` (plan, backup with .debs, journal, events, verify) and by plain
# apt-get making the same package changes, each on a fresh minbase chroot
# with the same signed repositories on 127.0.0.1; prints both and the ratio.
# Needs root, mmdebstrap, apt-utils, gnupg. usage: bench/migration-overhead.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
FERRY_BENCH_ROUNDS=${1:-3} cargo test --quiet --release -p ferry --test migration \
  -- --ignored --exact bench_overhead_against_plain_apt --nocapture 2>&1 | grep -v '^$'
