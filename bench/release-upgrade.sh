#!/usr/bin/env bash
# Benchmark: a Debian 12 -> 13 release upgrade of a minbase chroot, from the
# Debian mirror this host's apt configuration names, done by
# `ferry release upgrade --yes` (plan, offline backup of every changed
# package, journal, self-upgrade, verify) and then — after ferry's own
# offline rollback — by plain `apt-get update && apt-get full-upgrade` on
# the same chroot. Prints both times and the backup's size.
# Needs root, mmdebstrap, gnupg, binutils and the mirror.
# usage: bench/release-upgrade.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FERRY_BENCH_RELEASE_UPGRADE=1 cargo test --quiet --release -p ferry --test release_upgrade \
  -- --exact upgrade_to_trixie_and_back_offline --nocapture 2>&1 | grep -E '^figures|test result|panicked|skipped'
