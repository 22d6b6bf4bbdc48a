#!/usr/bin/env bash
# Runs ferry's whole test suite: installs the system tools the tests use as
# oracles and real components (dpkg, dose-distcheck, python3-apt, gpg,
# mmdebstrap, lintian, …) when run as root, then checks the style (rustfmt,
# clippy), then runs every test of the workspace — the replay of every kept
# fuzz corpus among them — then the end-to-end package test, each part
# whatever the parts before it did.
#
# Ends with one line, `N passed, N failed, N skipped`, summing every part:
# - cargo's `test result:` lines, with the tests that skipped taken out of
#   "passed": cargo counts a test that returned early as passed, so every
#   skip appends `<package>/<target>::<test>: <why>` to $FERRY_SKIP_LOG
#   (ferry-testkit's skip!, note_skip!, skip_unless!). A test that skipped
#   all or part of its checks counts once, as skipped — unless it failed.
# - cargo's ignored tests (benchmarks, run with `-- --ignored`) count as
#   skipped: they did not run.
# - `cargo fmt --all --check` and `cargo clippy --workspace --all-targets
#   --release -- -D warnings`, one check each; skipped when cargo lacks the
#   subcommand and there is no rustup to add its component.
# - scripts/test-package.sh's `N passed, N failed` and its `SKIP:` lines.
# - scripts/test-takeover-vm.sh: each case once (`<case> ok|FAILED …`), its
#   `SKIP:` lines (qemu cannot run) as skipped.
# Every skip is listed with its reason before that line. A part that
# cannot run at all (a build error, a failed install) counts as one
# failure. Exits non-zero when anything failed.
#
# usage: scripts/test-all.sh          (as root for the full suite)
# Logs: $CARGO_TARGET_DIR/test-all/ (default target/test-all/).
set -uo pipefail
cd "$(dirname "$0")/.."

system_packages=(
  dpkg-dev apt-utils python3-apt dose-distcheck dpkg-repack
  xz-utils lz4 zstd bzip2 gzip
  gnupg sqv
  mmdebstrap lintian debhelper fakeroot build-essential
  systemd # systemd-analyze, for the package's unit
  time    # /usr/bin/time, for bench/
  fdisk util-linux mount e2fsprogs dosfstools btrfs-progs squashfs-tools bmap-tools # disk images: sfdisk, blkid, losetup, mkfs.*, bmaptool
  network-manager openssh-client # takeover: nmcli --offline reads the keyfiles ferry writes; ssh-keygen checks host keys
  grub-pc-bin grub2-common # takeover VM images: grub-install --target=i386-pc (qemu: test-takeover-vm.sh installs it from one suite)
  mosquitto mosquitto-clients # the fleet's MQTT hint: a real broker and mosquitto_pub (tests/fleet_mqtt.rs)
)

logs="${CARGO_TARGET_DIR:-target}/test-all"
rm -rf "$logs"
mkdir -p "$logs" || exit 1
logs=$(cd "$logs" && pwd)
export FERRY_SKIP_LOG="$logs/skips"
: >"$FERRY_SKIP_LOG"

passed=0 failed=0 skipped=0
failures=() # parts that could not run, and failing tests
skip_list=()

# ---------------------------------------------------------------- tools
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${system_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing: ${missing[*]}"
    apt-get update -qq || echo "warning: apt-get update failed; trying the lists we have"
    # apt may exit 0 while saying E: or W:; what it said is kept and shown.
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" \
      >"$logs/install.log" 2>&1 && ! grep -q '^E:' "$logs/install.log"; then
      grep '^W:' "$logs/install.log" || true
    else
      cat "$logs/install.log"
      failed=$((failed + 1))
      failures+=("installing ${missing[*]} (see $logs/install.log)")
    fi
  fi
else
  echo "note: not root; system packages are not installed and tests that need them skip"
fi

# ---------------------------------------------------------------- style
# rustfmt and clippy are rustup components that a minimal toolchain lacks;
# each check counts once: passed, failed, or skipped when its tool cannot be
# had. A failed `rustup component add` is a part that cannot run: a failure.
style_check() { # <cargo subcommand> <rustup component> <log name> <cargo args…>
  local sub=$1 component=$2 log="$logs/$3.log" what="cargo ${*:4}"
  shift 3
  echo "== $what (log: $log)"
  if ! cargo "$sub" --version >/dev/null 2>&1; then
    if ! command -v rustup >/dev/null; then
      skipped=$((skipped + 1))
      skip_list+=("$what: no cargo $sub, and no rustup to add $component")
      return
    fi
    echo "== rustup component add $component"
    if ! rustup component add "$component" >"$logs/$component.log" 2>&1 ||
      ! cargo "$sub" --version >/dev/null 2>&1; then
      cat "$logs/$component.log"
      failed=$((failed + 1))
      failures+=("$what: rustup component add $component failed (see $logs/$component.log)")
      return
    fi
  fi
  if cargo "$@" 2>&1 | tee "$log"; then # pipefail: cargo's status
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$what failed (see $log)")
  fi
}
style_check fmt rustfmt fmt fmt --all --check
# --release: the tests' profile, so both use one set of built build scripts
# and proc macros.
style_check clippy clippy clippy clippy --workspace --all-targets --release -- -D warnings

# ---------------------------------------------------------------- cargo
echo "== cargo test --workspace --release --no-fail-fast (log: $logs/cargo.log)"
cargo test --workspace --release --no-fail-fast 2>&1 | tee "$logs/cargo.log"
cargo_rc=${PIPESTATUS[0]}

# One line per finding: "R passed failed ignored" per test binary, "F key"
# per failed test, "I key" per ignored test; key is <target>::<test>, as
# the skip log names it after its package.
awk '
  /^ +Running / {
    bin = $NF; gsub(/[()]/, "", bin); n = split(bin, part, "/"); bin = part[n]
    sub(/-[0-9a-f]+$/, "", bin)
  }
  /^ +Doc-tests / { bin = $2 " doc-test" }
  /^test .* \.\.\. / {
    name = substr($0, 6, index($0, " ... ") - 6)
    if ($0 ~ / \.\.\. FAILED$/) print "F " bin "::" name
    else if ($0 ~ / \.\.\. ignored/) print "I " bin "::" name
  }
  /^test result: / {
    p = f = i = 0
    if (match($0, /[0-9]+ passed/)) p = substr($0, RSTART, RLENGTH) + 0
    if (match($0, /[0-9]+ failed/)) f = substr($0, RSTART, RLENGTH) + 0
    if (match($0, /[0-9]+ ignored/)) i = substr($0, RSTART, RLENGTH) + 0
    print "R " p " " f " " i
  }' "$logs/cargo.log" >"$logs/cargo.findings"

cargo_passed=0 cargo_failed=0 cargo_ignored=0
while read -r kind a b c; do
  [ "$kind" = R ] || continue
  cargo_passed=$((cargo_passed + a))
  cargo_failed=$((cargo_failed + b))
  cargo_ignored=$((cargo_ignored + c))
done <"$logs/cargo.findings"
while read -r kind key; do
  case $kind in
    F) failures+=("$key") ;;
    I) skip_list+=("$key: ignored (a benchmark; cargo test -- --ignored runs it)") ;;
  esac
done <"$logs/cargo.findings"

# Tests that skipped: once each, by the name before the first ": ".
declare -A failed_test=() skipped_test=()
while read -r kind key; do
  [ "$kind" = F ] && failed_test["$key"]=1
done <"$logs/cargo.findings"
while IFS= read -r line; do
  [ -n "$line" ] || continue
  skip_list+=("$line")
  name=${line%%: *}
  key=${name#*/}
  [ -n "${failed_test["$key"]:-}" ] || skipped_test["$name"]=1
done < <(sort "$FERRY_SKIP_LOG")
cargo_skipped=${#skipped_test[@]}

passed=$((passed + cargo_passed - cargo_skipped))
failed=$((failed + cargo_failed))
skipped=$((skipped + cargo_skipped + cargo_ignored))
if [ "$cargo_rc" != 0 ] && [ "$cargo_failed" = 0 ]; then
  failed=$((failed + 1))
  failures+=("cargo test exited $cargo_rc with no failing test: it did not build or run (see $logs/cargo.log)")
fi
echo "cargo: $((cargo_passed - cargo_skipped)) passed, $cargo_failed failed," \
  "$cargo_skipped skipped, $cargo_ignored ignored"

# ---------------------------------------------------------------- package
echo "== Debian package test (log: $logs/package.log)"
scripts/test-package.sh 2>&1 | tee "$logs/package.log"
package_rc=${PIPESTATUS[0]}
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$logs/package.log" | tail -n 1)
if [ -n "$summary" ]; then
  read -r package_passed _ package_failed _ <<<"${summary//,/}"
  passed=$((passed + package_passed))
  failed=$((failed + package_failed))
  grep '^FAIL: ' "$logs/package.log" | sed 's/^FAIL: /scripts\/test-package.sh: /' >"$logs/package.failures"
  while IFS= read -r line; do failures+=("$line"); done <"$logs/package.failures"
fi
while IFS= read -r line; do
  skip_list+=("scripts/test-package.sh: ${line#SKIP: }")
  skipped=$((skipped + 1))
done < <(grep '^SKIP: ' "$logs/package.log")
if [ "$package_rc" != 0 ] && [ -z "$summary" ]; then
  failed=$((failed + 1))
  failures+=("scripts/test-package.sh exited $package_rc without its summary (see $logs/package.log)")
fi

# ---------------------------------------------------------------- takeover VM
echo "== takeover VM cases (log: $logs/takeover-vm.log)"
scripts/test-takeover-vm.sh 2>&1 | tee "$logs/takeover-vm.log"
vm_rc=${PIPESTATUS[0]}
vm_summary=$(grep -E '^takeover-vm: [0-9]+ of [0-9]+ cases ok$' "$logs/takeover-vm.log" | tail -n 1)
while read -r vm_case vm_result _; do
  case $vm_result in
    ok) passed=$((passed + 1)) ;;
    FAILED)
      failed=$((failed + 1))
      failures+=("scripts/test-takeover-vm.sh: $vm_case (see $logs/takeover-vm.log)")
      ;;
  esac
done < <(grep -E '^[a-z0-9-]+ (ok|FAILED) [0-9]+s' "$logs/takeover-vm.log")
while IFS= read -r line; do
  skip_list+=("scripts/test-takeover-vm.sh: ${line#SKIP: }")
  skipped=$((skipped + 1))
done < <(grep '^SKIP: ' "$logs/takeover-vm.log")
if [ "$vm_rc" != 0 ] && [ -z "$vm_summary" ]; then
  failed=$((failed + 1))
  failures+=("scripts/test-takeover-vm.sh exited $vm_rc without its summary (see $logs/takeover-vm.log)")
fi

# ---------------------------------------------------------------- summary
echo
if [ ${#skip_list[@]} -gt 0 ]; then
  echo "== skipped"
  printf '  %s\n' "${skip_list[@]}"
fi
if [ ${#failures[@]} -gt 0 ]; then
  echo "== failed"
  printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
