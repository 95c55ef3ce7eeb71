#!/usr/bin/env bash
# Load benchmark of a running server with wrk (`make bench` runs it after the Go
# micro-benchmarks). Results and how to read them: docs/BENCHMARKS.md.
#
#   scripts/bench.sh
#
# - installs wrk with apt-get when it is missing (as root);
# - builds bin/taskmanager, starts a throwaway PostgreSQL cluster (fsync off) in a
#   mktemp directory on a free port, migrates it and starts `bin/taskmanager serve`
#   on 127.0.0.1:<free port>, with the rate limits raised out of the way and
#   LOG_LEVEL=warn (no access log);
# - registers a user, obtains an access token, creates an API key and 50 tasks;
# - runs wrk against loopback only, BENCH_RUNS rounds of three scenarios
#   (a) GET /api/tasks/?limit=20 with a Bearer token, (b) the same with an API key,
#   (c) GET /healthz without credentials (the floor), each run
#   `wrk -t2 -c32 -d10s --latency`, reads each run's numbers from the one line a wrk
#   Lua done() hook prints, and prints the median of the runs per scenario.
#
# Everything (server, cluster, temporary directory) is stopped and removed on exit.
# The script fails if any wrk run saw socket errors or non-2xx/3xx responses.
#
# Environment (defaults are what docs/BENCHMARKS.md reports):
#   BENCH_RUNS=3 BENCH_THREADS=2 BENCH_CONNECTIONS=32 BENCH_DURATION=10s
#   BENCH_KEEP=DIR   copy the raw wrk outputs and the server log to DIR
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib.sh

RUNS=${BENCH_RUNS:-3}
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
DURATION=${BENCH_DURATION:-10s}
TASKS=50

# --- tools ----------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		log "wrk not found; installing it with apt-get"
		apt_install wrk
	else
		die "wrk not found: sudo apt-get install wrk (or brew install wrk)"
	fi
fi
command -v curl >/dev/null 2>&1 || die "curl not found"

# --- cleanup --------------------------------------------------------------------------
# before_cleanup STATUS runs on exit (cleanup_on_exit in scripts/lib.sh), before the
# cluster is stopped and TMP_DIR removed.
# shellcheck disable=SC2317 # invoked by the EXIT trap
before_cleanup() {
	local status=$1
	[ -n "$TMP_DIR" ] || return 0
	# Stop the server first, so that its log is complete.
	stop_server
	if [ "$status" -ne 0 ] && [ -s "$TMP_DIR/server.log" ]; then
		echo "--- last lines of the server log ---" >&2
		tail -n 20 "$TMP_DIR/server.log" >&2 || true
	fi
	if [ -n "${BENCH_KEEP:-}" ]; then
		mkdir -p "$BENCH_KEEP"
		cp "$TMP_DIR"/wrk-*.txt "$TMP_DIR/server.log" "$BENCH_KEEP/" 2>/dev/null || true
	fi
}
cleanup_on_exit

make_temp_dir bench

# --- build, database, server ----------------------------------------------------------
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
log "building bin/taskmanager ($VERSION)"
go build -ldflags "-X main.version=$VERSION" -o bin/taskmanager ./cmd/taskmanager

start_throwaway_postgres "$TMP_DIR/pg" taskmanager
log "migrating $DATABASE_URL"
bin/taskmanager migrate >&2

# Rate limits raised out of the way; LOG_LEVEL=warn: no access log.
start_server "$TMP_DIR" \
	RATE_LIMIT_USER=1000000/second \
	RATE_LIMIT_ANON=1000000/second \
	MAX_TASKS_PER_USER=10000000 \
	LOG_LEVEL=warn

# --- fixtures -------------------------------------------------------------------------
# call EXPECTED_STATUS METHOD PATH [curl args...] prints the response body, and fails
# unless the status is the expected one.
call() {
	local want=$1 method=$2 path=$3 status
	shift 3
	status=$(curl -sS -o "$TMP_DIR/body" -w '%{http_code}' -X "$method" "$@" "$BASE_URL$path")
	if [ "$status" != "$want" ]; then
		echo "bench.sh: $method $path answered $status, want $want:" >&2
		cat "$TMP_DIR/body" >&2
		echo >&2
		return 1
	fi
	cat "$TMP_DIR/body"
}
json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }
JSON=(-H 'Content-Type: application/json')

user="bench_$(random_hex 4)"
password="Bench-$(random_hex 12)"
log "registering $user, creating an access token, an API key and $TASKS tasks"
call 201 POST /api/register/ "${JSON[@]}" -d "{\"username\":\"$user\",\"password\":\"$password\"}" >/dev/null
access=$(call 200 POST /api/token/ "${JSON[@]}" -d "{\"username\":\"$user\",\"password\":\"$password\"}" | json_field access)
[ -n "$access" ] || die "no access token in the answer of POST /api/token/"
BEARER="Authorization: Bearer $access"
key=$(call 201 POST /api/keys/ "${JSON[@]}" -H "$BEARER" -d "{\"name\":\"bench\",\"current_password\":\"$password\"}" | json_field key)
[ -n "$key" ] || die "no key in the answer of POST /api/keys/"
APIKEY="Authorization: Api-Key $key"
for i in $(seq 1 "$TASKS"); do
	call 201 POST /api/tasks/ "${JSON[@]}" -H "$BEARER" \
		-d "{\"title\":\"Bench task $i\",\"description\":\"Created by scripts/bench.sh\"}" >/dev/null
done

# Both credentials must see the same full page before we measure anything.
LIST="/api/tasks/?limit=20"
for h in "$BEARER" "$APIKEY"; do
	n=$(call 200 GET "$LIST" -H "$h" | grep -o '"id":' | wc -l)
	scheme=${h#Authorization: }
	[ "$n" -eq 20 ] || die "GET $LIST with ${scheme%% *} answered $n tasks, want 20"
done

# --- load -----------------------------------------------------------------------------
# Scenarios: name, URL, Authorization header (empty: none).
names=(bearer apikey healthz)
labels=("(a) GET $LIST, Bearer" "(b) GET $LIST, Api-Key" "(c) GET /healthz, no auth")
urls=("$BASE_URL$LIST" "$BASE_URL$LIST" "$BASE_URL/healthz")
headers=("$BEARER" "$APIKEY" "")

# wrk calls done() once with the totals of a run; it prints them as one line,
# "WRK req/s p50_ms p99_ms requests non2xx socket_errors", after wrk's own report.
cat >"$TMP_DIR/report.lua" <<'EOF'
function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("WRK %.2f %.3f %.3f %d %d %d\n",
		summary.requests / (summary.duration / 1e6),
		latency:percentile(50) / 1000, latency:percentile(99) / 1000,
		summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
EOF

# median of the numbers given as arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A rps p50 p99 bad
for name in "${names[@]}"; do rps[$name]=""; p50[$name]=""; p99[$name]=""; bad[$name]=0; done

total=$((RUNS * ${#names[@]}))
log "running wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency: $RUNS rounds of ${#names[@]} scenarios ($total runs)"
# Rounds interleave the scenarios (a b c, a b c, ...), so that a slow spell of this
# shared machine lands on all of them rather than on the three runs of one.
for round in $(seq 1 "$RUNS"); do
	for i in "${!names[@]}"; do
		name=${names[$i]}
		out="$TMP_DIR/wrk-$name-$round.txt"
		args=(-t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$TMP_DIR/report.lua")
		[ -z "${headers[$i]}" ] || args+=(-H "${headers[$i]}")
		wrk "${args[@]}" "${urls[$i]}" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
		read -r _ r l50 l99 requests non2xx sockerr < <(grep '^WRK ' "$out") || {
			cat "$out" >&2
			die "no WRK line in the wrk output of $name round $round"
		}
		rps[$name]+="$r "
		p50[$name]+="$l50 "
		p99[$name]+="$l99 "
		errs=$((non2xx + sockerr))
		bad[$name]=$((bad[$name] + errs))
		printf '   round %d %-8s %10s req/s  p50 %8s ms  p99 %8s ms  %8s requests  errors %s\n' \
			"$round" "$name" "$r" "$l50" "$l99" "$requests" "$errs" >&2
		if [ "$errs" -ne 0 ]; then
			echo "   !! $name round $round: non-2xx/3xx $non2xx, socket errors $sockerr:" >&2
			grep -E 'Non-2xx|Socket errors' "$out" | sed 's/^/   !! /' >&2
		fi
	done
done

# --- report ---------------------------------------------------------------------------
declare -A m_rps m_p50 m_p99
for name in "${names[@]}"; do
	# shellcheck disable=SC2086 # word splitting of the collected numbers is wanted
	m_rps[$name]=$(median ${rps[$name]})
	# shellcheck disable=SC2086
	m_p50[$name]=$(median ${p50[$name]})
	# shellcheck disable=SC2086
	m_p99[$name]=$(median ${p99[$name]})
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo
echo "taskmanager load benchmark: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, median of $RUNS runs"
echo "($(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); server, PostgreSQL and wrk share them)"
echo
printf '| %-37s | %10s | %9s | %9s | %6s |\n' scenario "req/s" "p50 ms" "p99 ms" errors
echo '|---------------------------------------|-----------:|----------:|----------:|-------:|'
for i in "${!names[@]}"; do
	name=${names[$i]}
	printf '| %-37s | %10.0f | %9.2f | %9.2f | %6d |\n' "${labels[$i]}" "${m_rps[$name]}" "${m_p50[$name]}" "${m_p99[$name]}" "${bad[$name]}"
done
echo
echo "Api-Key / Bearer: req/s x$(ratio "${m_rps[apikey]}" "${m_rps[bearer]}"), p50 x$(ratio "${m_p50[apikey]}" "${m_p50[bearer]}"), p99 x$(ratio "${m_p99[apikey]}" "${m_p99[bearer]}")"
echo "Bearer / Api-Key: req/s x$(ratio "${m_rps[bearer]}" "${m_rps[apikey]}"), p50 x$(ratio "${m_p50[bearer]}" "${m_p50[apikey]}"), p99 x$(ratio "${m_p99[bearer]}" "${m_p99[apikey]}")"
echo "Bearer / healthz: req/s x$(ratio "${m_rps[bearer]}" "${m_rps[healthz]}");  Api-Key / healthz: req/s x$(ratio "${m_rps[apikey]}" "${m_rps[healthz]}")"

errors=0
for name in "${names[@]}"; do errors=$((errors + bad[$name])); done
if [ "$errors" -ne 0 ]; then
	echo
	echo "bench.sh: $errors failed requests (non-2xx/3xx answers or socket errors) during the load; the numbers above are not valid" >&2
	exit 1
fi
