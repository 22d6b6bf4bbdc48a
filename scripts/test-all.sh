#!/usr/bin/env bash
# Runs ferry's whole test suite: installs the system tools the tests use as
# oracles and real components (dpkg, dose-distcheck, python3-apt, gpg,
# mmdebstrap, lintian, …) when run as root, then every test of the
# workspace, then the end-to-end package test. Tests that need a tool, root
# or the large data set skip with a message where they cannot run.
#
# usage: scripts/test-all.sh          (as root for the full suite)
set -euo pipefail
cd "$(dirname "$0")/.."

system_packages=(
  dpkg-dev apt-utils python3-apt dose-distcheck
  xz-utils lz4 zstd bzip2 gzip
  gnupg sqv
  mmdebstrap lintian debhelper fakeroot build-essential
  time
)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${system_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing: ${missing[*]}"
    apt-get update -qq || echo "warning: apt-get update failed; trying the lists we have"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
else
  echo "note: not root; system packages are not installed and tests that need them skip"
fi

echo "== cargo test (release: the whole-archive tests read 65 MB indices)"
cargo test --workspace --release

if [ -x scripts/test-package.sh ]; then
  echo "== Debian package test"
  scripts/test-package.sh
fi

if [ -x scripts/fuzz-replay.sh ]; then
  echo "== fuzz corpus replay"
  scripts/fuzz-replay.sh
fi
