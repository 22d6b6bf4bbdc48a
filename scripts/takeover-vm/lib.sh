# shellcheck shell=bash
# Shared helpers of scripts/test-takeover-vm.sh: the host's Debian mirror
# (read from its apt configuration, never written down), qemu from one
# Debian suite, and loop devices/mounts released whatever happens.

# Prints the host's `deb` sources, one per line: URI<TAB>signed-by<TAB>suites
# (signed-by "-" when none), sources.list.d/* (sorted) before sources.list,
# as ferry-testkit's mirror.rs reads them.
host_apt_sources() {
  local files=() f
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && files+=("$f")
  done
  mapfile -t files < <(printf '%s\n' "${files[@]}" | sort)
  [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
  for f in "${files[@]}"; do
    [ -n "$f" ] || continue
    case $f in
      *.sources) awk '
        function flush() {
          if (types ~ /(^| )deb( |$)/ && enabled != "no")
            for (i = 1; i <= nu; i++) print uri[i] "\t" (sb == "" ? "-" : sb) "\t" suites
          types = ""; enabled = ""; sb = ""; suites = ""; nu = 0
        }
        /^#/ { next }
        /^[ \t]*$/ { flush(); next }
        {
          key = tolower($0); sub(/:.*/, "", key); gsub(/[ \t]/, "", key)
          val = $0; sub(/^[^:]*:[ \t]*/, "", val); gsub(/[ \t]+$/, "", val)
          if (key == "types") types = val
          else if (key == "enabled") enabled = val
          else if (key == "signed-by") sb = val
          else if (key == "suites") suites = val
          else if (key == "uris") nu = split(val, uri, /[ \t]+/)
        }
        END { flush() }' "$f" ;;
      *) awk '
        { sub(/#.*/, "") }
        $1 == "deb" {
          sb = "-"; n = 2
          if ($2 ~ /^\[/) {
            opts = ""
            for (n = 2; n <= NF; n++) { opts = opts " " $n; if ($n ~ /\]$/) { n++; break } }
            if (match(opts, /signed-by=[^] ]+/)) sb = substr(opts, RSTART + 10, RLENGTH - 10)
          }
          if (n + 1 <= NF) print $n "\t" sb "\t" $(n + 1)
        }' "$f" ;;
    esac
  done
}

# The mirror (URI<TAB>signed-by) for a suite: FERRY_TEST_MIRROR if set, else
# the first source listing the suite, else the first main archive source.
host_mirror_for() { # <suite>
  if [ -n "${FERRY_TEST_MIRROR:-}" ]; then
    printf '%s\t-\n' "$FERRY_TEST_MIRROR"
    return
  fi
  local all
  all=$(host_apt_sources)
  awk -F '\t' -v s="$1" '
    { n = split($3, x, / +/); for (i = 1; i <= n; i++) if (x[i] == s) { print $1 "\t" $2; exit } }' <<<"$all" |
    grep . ||
    awk -F '\t' '
      { n = split($3, x, / +/); for (i = 1; i <= n; i++) if (x[i] !~ /[-\/]/) { print $1 "\t" $2; exit } }' <<<"$all" |
    grep .
}

# qemu-system-x86 and qemu-utils from one suite: bookworm-backports when the
# installed qemu-utils came from there (its version says bpo), else bookworm.
# Prints why and returns 1 when qemu cannot be had.
ensure_qemu() {
  if command -v qemu-system-x86_64 >/dev/null && command -v qemu-img >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "no qemu-system-x86_64/qemu-img, and not root with apt-get to install them"
    return 1
  fi
  local utils_version target=() log
  log=$(mktemp)
  utils_version=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)
  if [[ $utils_version == *bpo* ]]; then
    local mirror uri signed_by
    if ! mirror=$(host_mirror_for bookworm); then
      echo "qemu-utils $utils_version comes from bookworm-backports, but no bookworm source to add it beside"
      return 1
    fi
    IFS=$'\t' read -r uri signed_by <<<"$mirror"
    {
      echo "Types: deb"
      echo "URIs: $uri"
      echo "Suites: bookworm-backports"
      echo "Components: main"
      [ "$signed_by" = - ] || echo "Signed-By: $signed_by"
    } >/etc/apt/sources.list.d/ferry-test-backports.sources
    target=(-t bookworm-backports)
  fi
  apt-get update >"$log" 2>&1 || true
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${target[@]}" \
    qemu-system-x86 qemu-utils >>"$log" 2>&1 || grep -q '^E:' "$log" ||
    ! command -v qemu-system-x86_64 >/dev/null; then
    echo "installing qemu-system-x86 ${target[*]} failed:"
    grep -E '^(E|W|Err):' "$log" | tail -n 20
    return 1
  fi
  rm -f "$log"
}

# Makes sure LOOP's partition nodes exist: some kernels/containers scan the
# table on `losetup -P` without making the partitions; partx adds them.
part_nodes() { # <loop device>
  local _
  for _ in $(seq 20); do [ -b "${1}p1" ] && return 0; sleep 0.1; done
  partx -a "$1" 2>/dev/null || true
  for _ in $(seq 30); do [ -b "${1}p1" ] && return 0; sleep 0.1; done
  echo "no partitions appeared on $1" >&2
  return 1
}
