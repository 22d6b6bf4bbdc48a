#!/usr/bin/env bash
# Benchmark (issue 17, point 3): 10,000 simulated agents in one process
# (crates/ferry-fleet-sim) against one real `ferry fleet serve` on its
# SQLite file store. The agents enrol, poll with ETags at the server's
# interval (jittered) and post numbered event batches; a rollout to all of
# them is made whose abort threshold the simulated failures cross. Measures
# events/s accepted, p50/p99 poll latency, the server's peak RSS (VmHWM),
# the time from the threshold-crossing result to the rollout reading as
# halted over the API, and at the end events lost and doubled: each
# device's sent seqs (1..=N) against the rows in the SQLite file.
#
# usage: bench/fleet-scale.sh [AGENTS] [SECONDS]
#   env: FLEET_INTERVAL (server poll interval, default 60 s as the server's),
#        FLEET_EVENTS (events per poll per agent, default 5),
#        CARGO_TARGET_DIR (where to build)
# Needs sqlite3. Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
agents=${1:-10000}
seconds=${2:-100}
interval=${FLEET_INTERVAL:-60}
events=${FLEET_EVENTS:-5}
target=${CARGO_TARGET_DIR:-target}

command -v sqlite3 >/dev/null || { echo "fleet-scale: needs sqlite3 (apt-get install sqlite3)" >&2; exit 2; }
cargo build --quiet --release -p ferry --bin ferry -p ferry-fleet-sim --bin ferry-fleet-sim
# Every agent holds one connection and the server one socket per agent:
# each process needs a descriptor per agent. Raise the soft limit as far
# as the hard one allows (a container may cap that).
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((agents + 256)) ]; then
  echo "fleet-scale: $agents agents need $((agents + 256)) open files per process, the limit is $(ulimit -n)" >&2
  exit 2
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/operator.token"

# One store per line; the server takes a --database URL once it has a
# PostgreSQL store, and that line is run the same way.
run_store() { # NAME
  local name=$1 db="$work/fleet-$1.db"
  "$target/release/ferry" fleet serve --listen 127.0.0.1:0 --db "$db" \
    --operator-token-file "$work/operator.token" --interval "$interval" > "$work/serve.out" 2> "$work/serve.err" &
  server_pid=$!
  local url=
  for _ in $(seq 100); do
    url=$(sed -n 's/^listening on //p' "$work/serve.out")
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { echo "fleet-scale $name: the server did not start" >&2; cat "$work/serve.err" >&2; exit 1; }

  # The rollout comes once every agent has polled at least once.
  "$target/release/ferry-fleet-sim" --server "$url" --operator-token-file "$work/operator.token" \
    --agents "$agents" --duration-secs "$seconds" --events-per-poll "$events" \
    --rollout-after-secs $((interval + 5)) --canary 10% --abort-failures 50 --fail-percent 10 \
    --sent-csv "$work/sent.csv" > "$work/sim.out"
  local rss
  rss=$(awk '/^VmHWM/ {print $2}' "/proc/$server_pid/status")
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=

  get() { sed -n "s/^$1=//p" "$work/sim.out" | tr -d '"'; }
  # Lost: a seq a device sent that the store does not hold; doubled: a
  # (device, seq) held twice, or held though never sent.
  read -r lost doubled < <(sqlite3 -separator ' ' "$db" <<SQL
CREATE TEMP TABLE sent (device_id TEXT PRIMARY KEY, seq INTEGER);
.mode csv
.import $work/sent.csv sent
.mode list
.separator ' '
SELECT
  (SELECT COALESCE(SUM(s.seq), 0) FROM sent s)
    - (SELECT COUNT(DISTINCT e.device_id || ':' || e.seq) FROM events e JOIN sent s
       ON s.device_id = e.device_id AND e.seq BETWEEN 1 AND s.seq),
  (SELECT COUNT(*) FROM events) - (SELECT COUNT(DISTINCT device_id || ':' || seq) FROM events)
    + (SELECT COUNT(*) FROM events e LEFT JOIN sent s ON s.device_id = e.device_id
       WHERE s.seq IS NULL OR e.seq > s.seq);
SQL
)
  echo "fleet-scale $name: enrolled $(get agents) in $(get enrol_secs) s; $(get polls) polls" \
    "($(get poll_errors) failed), p50 $(get poll_p50_ms) ms, p99 $(get poll_p99_ms) ms, max $(get poll_max_ms) ms;" \
    "$(get events_stored) events stored ($(get events_duplicate) resent, $(get batch_errors) batches failed);" \
    "rollout $(get rollout_state) after $(get rollout_failures_acked) failures; server peak RSS $((rss / 1024)) MiB;" \
    "API count: lost $(get lost), doubled $(get doubled)"
  printf 'fleet-scale %s: %s agents, %.0f events/s, p99 %.0f ms, halt %s s, lost %s, doubled %s\n' \
    "$name" "$(get agents)" "$(get events_per_sec)" "$(get poll_p99_ms)" \
    "$(get rollout_halt_secs | awk '$1 == "null" {print "never"; next} {printf "%.2f", $1}')" "$lost" "$doubled" \
    >> "$work/lines"
}

run_store sqlite
echo "fleet-scale postgres: skipped (the server has no PostgreSQL store yet)" >> "$work/lines"
cat "$work/lines"
