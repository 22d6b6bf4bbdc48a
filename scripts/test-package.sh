#!/usr/bin/env bash
# End-to-end test of ferry's Debian package, as a user and an administrator
# meet it: builds the .deb with dpkg-buildpackage from a copy of the work
# tree, runs lintian, installs the package into a fresh minbase chroot
# (mmdebstrap, from the mirror of this host's own APT configuration) with
# apt-get, runs ferry there, checks the directories, the units (resume,
# fleet agent) and the completions, then the maintainer scripts: prerm refusing removal during a
# migration, preinst keeping journals, postrm purge keeping backups.
#
# Prints PASS:/FAIL: per check, SKIP: per check it cannot make here, and
# ends with "N passed, N failed"; exits non-zero when any check failed.
# Skips (exit 0, one SKIP: line) when not root.
#
# usage: scripts/test-package.sh
#   FERRY_KEEP=1           keep the work directory (build, chroot) afterwards
#   DEB_BUILD_OPTIONS=...  passed to dpkg-buildpackage (default: nocheck, the
#                          test suite runs before this in scripts/test-all.sh)
# See docs/packaging.md.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: scripts/test-package.sh needs root (apt-get, mmdebstrap, chroot); not run"
  exit 0
fi

passed=0
failed=0
pass() { echo "PASS: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1"; failed=$((failed + 1)); }
# check NAME COMMAND...: one PASS or FAIL line for COMMAND's exit status.
check() {
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}
summary() {
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
}
# abort NAME: a step the rest depends on failed; report it and stop.
abort() {
  fail "$1"
  summary
  exit 1
}

work=$(mktemp -d /tmp/ferry-package.XXXXXX)
root="$work/chroot"
fake_pid=
cleanup() {
  [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null
  mountpoint -q "$root/proc" 2>/dev/null && umount "$root/proc"
  if [ "${FERRY_KEEP:-}" = 1 ]; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- tools
tools=(dpkg-dev debhelper fakeroot build-essential lintian mmdebstrap)
missing=()
for p in "${tools[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  apt-get update -qq || echo "warning: apt-get update failed; trying the lists we have"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$work/tools.log" 2>&1 ||
    { cat "$work/tools.log"; abort "install the build and test tools (${missing[*]})"; }
fi

# ---------------------------------------------------------------- build
# A copy of what a checkout has (tracked and untracked files, none that git
# ignores: no target/, no earlier build products), so nothing is built in
# the repository and the build cannot lean on leftovers. Fuzz corpora are
# left out: the package does not use them and fuzzers rewrite them live.
version=$(dpkg-parsechangelog -l debian/changelog -S Version)
src="$work/ferry-$version"
mkdir -p "$src"
git ls-files -z -co --exclude-standard -- . ':!fuzz/corpus' ':!fuzz/artifacts' |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -xf - -C "$src" || abort "copy the work tree to $src"

# Debian's cargo and rustc when they satisfy debian/control, else rustup's
# through the build profile pkg.ferry.rustup (debian/README.source).
profile=()
if ! (cd "$src" && dpkg-checkbuilddeps >/dev/null 2>&1); then
  profile=(-Ppkg.ferry.rustup)
fi
echo "== dpkg-buildpackage -us -uc -b ${profile[*]} (log: $work/build.log)"
# Compiled crates are cached in the repository's ignored target/ so that a
# second run does not rebuild them; the package is still built afresh.
if (cd "$src" &&
  CARGO_TARGET_DIR="$repo/target/debian-package" \
    DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS-nocheck}" \
    dpkg-buildpackage -us -uc -b "${profile[@]}") >"$work/build.log" 2>&1; then
  pass "dpkg-buildpackage -us -uc -b ${profile[*]}"
else
  tail -n 40 "$work/build.log"
  abort "dpkg-buildpackage -us -uc -b ${profile[*]}"
fi
arch=$(dpkg --print-architecture)
deb="$work/ferry_${version}_${arch}.deb"
[ -f "$deb" ] || abort "the build made $(basename "$deb")"
echo "   $(basename "$deb"): $(stat -c %s "$deb") bytes," \
  "Installed-Size $(dpkg-deb -f "$deb" Installed-Size) KiB"

# ---------------------------------------------------------------- lintian
lintian --pedantic -I "$work/ferry_${version}_${arch}.changes" >"$work/lintian.log" 2>&1
sed -e '/running with root privileges/d' -e 's/^/   lintian: /' "$work/lintian.log"
check "lintian: no errors or warnings" \
  bash -c '! grep -E "^(E|W): " "$1"' _ "$work/lintian.log"

contents=$(dpkg-deb -c "$deb" | awk '{print $NF}')
has() { grep -qx "./$1" <<<"$contents"; }
check "package has /usr/bin/ferry" has usr/bin/ferry
check "package has man pages ferry.1, ferry-version.1, ferry-sources.1" \
  bash -c 'for p in ferry ferry-version ferry-sources; do grep -qx "./usr/share/man/man1/$p.1.gz" <<<"$1" || exit 1; done' _ "$contents"
check "package has the docs (profile, release upgrade, archive, JSON, exit codes) in /usr/share/doc/ferry/" \
  bash -c 'for d in profile release-upgrade archive json exit-codes; do grep -qE "^\./usr/share/doc/ferry/$d\.md(\.gz)?$" <<<"$1" || exit 1; done' _ "$contents"
dpkg-deb -x "$deb" "$work/unpacked"
check "every man page reads with man -l without a warning, with EXIT STATUS, FILES and EXAMPLES" \
  bash -c 'for p in "$1"/usr/share/man/man1/*.1.gz; do
      [ -z "$(man --warnings -E UTF-8 -l "$p" 2>&1 >/dev/null)" ] || exit 1
      text=$(MANWIDTH=80 man -l "$p" 2>/dev/null | col -b)
      for s in DESCRIPTION "EXIT STATUS" FILES EXAMPLES; do grep -q "^$s" <<<"$text" || exit 1; done
    done' _ "$work/unpacked"
check "package has no man page for hidden commands" \
  bash -c '! grep -E "man1/ferry-(generate|help)" <<<"$1"' _ "$contents"
check "package has bash, zsh and fish completions" \
  bash -c 'for f in bash-completion/completions/ferry zsh/vendor-completions/_ferry fish/vendor_completions.d/ferry.fish; do grep -qx "./usr/share/$f" <<<"$1" || exit 1; done' _ "$contents"

# ---------------------------------------------------------------- chroot
# The mirror is this host's: the first "deb" entry for the host's release in
# its APT configuration (deb822 .sources files, then sources.list).
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
mirror=$(
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && { cat "$f"; echo; }
  done | awk -v suite="$codename" '
    BEGIN { RS = ""; FS = "\n" }
    {
      types = uris = suites = ""; enabled = "yes"
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^Types:/) types = " " substr($i, 7) " "
        else if ($i ~ /^URIs:/) uris = substr($i, 6)
        else if ($i ~ /^Suites:/) suites = " " substr($i, 8) " "
        else if ($i ~ /^Enabled:/) enabled = substr($i, 9)
      }
      gsub(/[ \t]+/, " ", types); gsub(/[ \t]+/, " ", suites); gsub(/^[ \t]+/, "", enabled)
      if (enabled != "no" && types ~ / deb / && suites ~ " " suite " ") {
        split(uris, u, " "); for (k in u) if (u[k] != "") { print u[k]; exit }
      }
    }'
)
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk -v suite="$codename" '
    $1 == "deb" {
      i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      if ($(i + 1) == suite) { print $i; exit }
    }' /etc/apt/sources.list)
fi
[ -n "$codename" ] && [ -n "$mirror" ] ||
  abort "find a mirror for '$codename' in this host's APT configuration"

echo "== mmdebstrap --variant=minbase $codename (log: $work/mmdebstrap.log)"
if mmdebstrap --variant=minbase "$codename" "$root" "deb $mirror $codename main" \
  >"$work/mmdebstrap.log" 2>&1; then
  pass "mmdebstrap --variant=minbase $codename"
else
  tail -n 20 "$work/mmdebstrap.log"
  abort "mmdebstrap --variant=minbase $codename"
fi
# prerm looks for the migration's process in /proc.
mount -t proc proc "$root/proc" || abort "mount /proc in the chroot"
in_root() { chroot "$root" "$@"; }
cp "$deb" "$root/tmp/"
chroot_deb="/tmp/$(basename "$deb")"
apt_get() { in_root env DEBIAN_FRONTEND=noninteractive apt-get -y "$@"; }
installed() { [ "$(in_root dpkg-query -W -f='${Status}' ferry 2>/dev/null)" = "install ok installed" ]; }

if apt_get install "$chroot_deb" >"$work/install.log" 2>&1 && installed; then
  pass "apt-get install ./$(basename "$deb") in the chroot"
else
  tail -n 20 "$work/install.log"
  abort "apt-get install ./$(basename "$deb") in the chroot"
fi

# ---------------------------------------------------------------- ferry runs
check "ferry --version says ferry $version" \
  bash -c '[ "$(chroot "$1" ferry --version)" = "ferry $2" ]' _ "$root" "$version"
sources_out=$(in_root ferry sources show 2>&1)
sources_rc=$?
echo "$sources_out" | sed 's/^/   /'
check "ferry sources show exits 0 in the chroot" test "$sources_rc" = 0
check "ferry sources show lists the chroot's suite $codename" grep -qw "$codename" <<<"$sources_out"
check "bash completes 'ferry so' to 'sources'" bash -c '
  out=$(chroot "$1" bash -c "source /usr/share/bash-completion/completions/ferry
    COMP_WORDS=(ferry so); COMP_CWORD=1; _ferry ferry so ferry; echo \"\${COMPREPLY[*]}\"")
  [ "$out" = sources ]' _ "$root"

# ---------------------------------------------------------------- files
# mode_is PATH MODE OWNER:GROUP
mode_is() {
  local got
  got=$(stat -c '%a %U:%G' "$root$1" 2>/dev/null) || return 1
  [ "$got" = "$2 $3" ] || { echo "   $1: $got, expected $2 $3"; return 1; }
}
check "/var/lib/ferry is 0700 root:root" mode_is /var/lib/ferry 700 root:root
check "/var/log/ferry is 0750 root:adm" mode_is /var/log/ferry 750 root:adm
check "/var/backups/ferry is 0700 root:root" mode_is /var/backups/ferry 700 root:root
unit=/lib/systemd/system/ferry-resume.service
check "ferry-resume.service is installed" test -f "$root$unit"
check "ferry-resume.service runs only when the lock names a migration" \
  grep -qx 'ConditionFileNotEmpty=/var/lib/ferry/lock' "$root$unit"
check "ferry-resume.service runs 'ferry run --resume --yes'" \
  grep -qx 'ExecStart=/usr/bin/ferry run --resume --yes' "$root$unit"
check "ferry-resume.service is enabled (multi-user.target.wants)" \
  test -L "$root/etc/systemd/system/multi-user.target.wants/ferry-resume.service"
# Verified with the host's systemd (the chroot has none); the only
# complaint allowed is that the host has no /usr/bin/ferry.
if command -v systemd-analyze >/dev/null; then
  check "systemd-analyze verify ferry-resume.service" bash -c '
    out=$(systemd-analyze verify --man=no "$1" 2>&1)
    grep -v "/usr/bin/ferry is not executable" <<<"$out" | { ! grep .; } || { echo "$out"; exit 1; }' _ "$root$unit"
else
  echo "SKIP: systemd-analyze verify ferry-resume.service: systemd-analyze is not installed (apt-get install systemd)"
fi

agent_unit=/lib/systemd/system/ferry-agent.service
check "ferry-agent.service is installed" test -f "$root$agent_unit"
check "ferry-agent.service waits for enrolment (ConditionPathExists on identity.json)" \
  grep -qx 'ConditionPathExists=/var/lib/ferry/agent/identity.json' "$root$agent_unit"
check "ferry-agent.service runs 'ferry agent' with FERRY_AGENT_ARGS from /etc/default/ferry-agent" bash -c '
  grep -qx "EnvironmentFile=-/etc/default/ferry-agent" "$1" &&
  grep -qx "ExecStart=/usr/bin/ferry agent --state /var/lib/ferry/agent \$FERRY_AGENT_ARGS" "$1"' _ "$root$agent_unit"
check "ferry-agent.service is enabled (multi-user.target.wants)" \
  test -L "$root/etc/systemd/system/multi-user.target.wants/ferry-agent.service"
dpkg-deb -e "$deb" "$work/control"
check "the maintainer scripts never start, stop or restart ferry-agent.service" bash -c '
  ! grep -hE "deb-systemd-invoke.*ferry-agent" "$1"/postinst "$1"/prerm "$1"/postrm 2>/dev/null' _ "$work/control"
check "ferry agent --help names the flags the unit documents" bash -c '
  help=$(chroot "$1" ferry agent --help) &&
  for f in --state --keyring --ca --cert --key --server; do grep -q -- "$f" <<<"$help" || exit 1; done' _ "$root"
if command -v systemd-analyze >/dev/null; then
  check "systemd-analyze verify ferry-agent.service" bash -c '
    out=$(systemd-analyze verify --man=no "$1" 2>&1)
    grep -v "/usr/bin/ferry is not executable" <<<"$out" | { ! grep .; } || { echo "$out"; exit 1; }' _ "$root$agent_unit"
else
  echo "SKIP: systemd-analyze verify ferry-agent.service: systemd-analyze is not installed (apt-get install systemd)"
fi

# ---------------------------------------------------------------- prerm
# A migration as ferry leaves it on disk (docs/packaging.md, ferry-journal): its
# journal, and the lock naming it and the pid of the ferry running it.
write_journal() { # write_journal ID OUTCOME
  mkdir -p "$root/var/lib/ferry/$1"
  cat >"$root/var/lib/ferry/$1/state.json" <<JSON
{
  "format": 1,
  "id": "$1",
  "profile": "/etc/ferry/move, to {new} org.toml",
  "profile_sha256": "00",
  "created": 1795000000,
  "outcome": "$2",
  "steps": [
    { "step": "preflight", "state": "done", "started": 1, "finished": 2 }
  ]
}
JSON
}
lockfile="$root/var/lib/ferry/lock"
write_lock() { printf '{"migration":"%s","pid":%s}' "$1" "$2" >"$lockfile"; }
# A live process whose name is ferry: sleep, copied under that name.
cp /bin/sleep "$work/ferry"
stop_fake() {
  [ -n "$fake_pid" ] && { kill "$fake_pid" 2>/dev/null; wait "$fake_pid" 2>/dev/null; }
  fake_pid=
}
# refused NAME PATTERN: apt-get remove ferry fails, says PATTERN, and leaves
# ferry installed.
refused() {
  local out rc
  out=$(apt_get remove ferry 2>&1)
  rc=$?
  echo "$out" | grep '^ferry:' | head -n 1 | sed 's/^/   /'
  check "$1" bash -c '[ "$1" != 0 ] && grep -q "$2" <<<"$3"' _ "$rc" "$2" "$out"
  check "ferry is still installed after that" installed
}

write_journal move-to-new-org in-progress
# 1. A run holds the lock (flock, as MigrationLock does); the pid written in
#    it is not even alive, so only the flock can tell.
write_lock move-to-new-org 999999999
(exec 9>>"$lockfile" && flock -x 9 && exec "$work/ferry" 600) &
fake_pid=$!
sleep 0.5
refused "prerm refuses removal while a run holds the lock" "migration move-to-new-org is running"
stop_fake
# 2. The lock names a live ferry process that does not hold the flock.
"$work/ferry" 600 &
fake_pid=$!
write_lock move-to-new-org "$fake_pid"
refused "prerm refuses removal while the lock names a live ferry (pid $fake_pid)" \
  "migration move-to-new-org is running (pid $fake_pid)"
stop_fake
# 3. Power cut: the lock still names the migration, nobody runs it, and
#    its journal says in-progress.
refused "prerm refuses removal of an interrupted migration (outcome in-progress)" \
  "migration move-to-new-org was interrupted (outcome in-progress"

# ---------------------------------------------------------------- preinst
# A reinstall is an upgrade to dpkg: preinst upgrade <old version>.
if apt_get install --reinstall "$chroot_deb" >"$work/reinstall.log" 2>&1; then
  pass "apt-get install --reinstall during an interrupted migration"
else
  tail -n 20 "$work/reinstall.log"
  fail "apt-get install --reinstall during an interrupted migration"
fi
check "preinst kept the journal and the lock in /var/backups/ferry/journals/$version-*/" bash -c '
  set -- "$1"/var/backups/ferry/journals/"$2"-*/
  [ -f "$1/move-to-new-org/state.json" ] && grep -q in-progress "$1/move-to-new-org/state.json" &&
  grep -q move-to-new-org "$1/lock"' _ "$root" "$version"
check "the journal itself is untouched" grep -q '"outcome": "in-progress"' \
  "$root/var/lib/ferry/move-to-new-org/state.json"

out=$(FERRY_FORCE_REMOVE=1 apt_get remove ferry 2>&1)
rc=$?
check "FERRY_FORCE_REMOVE=1 apt-get remove ferry removes it anyway" \
  bash -c '[ "$1" = 0 ] && ! chroot "$2" test -e /usr/bin/ferry' _ "$rc" "$root"

apt_get install "$chroot_deb" >"$work/install2.log" 2>&1 || tail -n 20 "$work/install2.log"
# 4. The run ended: journal terminal, lock emptied (not deleted).
write_journal move-to-new-org rolled-back
: >"$lockfile"
out=$(apt_get remove ferry 2>&1)
rc=$?
check "prerm allows removal once the migration has ended (empty lock)" \
  bash -c '[ "$1" = 0 ] && ! chroot "$2" test -e /usr/bin/ferry' _ "$rc" "$root"

# ---------------------------------------------------------------- purge
echo "a log line" >"$root/var/log/ferry/move-to-new-org.log"
out=$(apt_get purge ferry 2>&1)
rc=$?
check "apt-get purge ferry" test "$rc" = 0
check "purge removed /var/lib/ferry" test ! -e "$root/var/lib/ferry"
check "purge removed /var/log/ferry" test ! -e "$root/var/log/ferry"
check "purge kept /var/backups/ferry and its journals" bash -c '
  [ -d "$1/var/backups/ferry" ] &&
  set -- "$1"/var/backups/ferry/journals/*/move-to-new-org/state.json && [ -f "$1" ]' _ "$root"
check "purge removed the units and their enablement" bash -c '
  for u in ferry-resume ferry-agent; do
    [ ! -e "$1/lib/systemd/system/$u.service" ] &&
    [ ! -L "$1/etc/systemd/system/multi-user.target.wants/$u.service" ] || exit 1
  done' _ "$root"

summary
