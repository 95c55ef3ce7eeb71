#!/usr/bin/env bash
# Soak (`make soak`, not part of `make test`): mixed traffic at a fixed moderate rate
# against the local cluster of `make cluster` (three instances behind haproxy, Redis,
# the local PostgreSQL) for SOAK_DURATION (default 600 s), sampling each instance's
# resident memory (VmRSS) and goroutines (go_goroutines on its metrics port) every
# SOAK_EVERY seconds (default 60), then printing the growth from first to last sample.
#
# The traffic is wrk with SOAK_CONNECTIONS connections (default 4), each waiting
# SOAK_DELAY_MS (default 20) between requests: about 200 requests/s, in a mix of
# task lists, single tasks, creates and /api/me/. Loopback only; it stops by itself.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib.sh
LOG_PREFIX="soak:"
DURATION=${SOAK_DURATION:-600}
EVERY=${SOAK_EVERY:-60}
CONNECTIONS=${SOAK_CONNECTIONS:-4}
DELAY_MS=${SOAK_DELAY_MS:-20}

command -v wrk >/dev/null 2>&1 || { [ "$(id -u)" -eq 0 ] || die "missing wrk: sudo apt-get install wrk"; apt_install wrk; }
state=$(mktemp -d)
CLUSTER_ADDR=127.0.0.1:$(free_port)
export CLUSTER_ADDR
# The soak measures the server, not the limits: one user sends all of it, with
# one access token that outlives the run.
export RATE_LIMIT_USER=1000000/minute RATE_LIMIT_USER_SUSTAINED=1000000/hour MAX_TASKS_PER_USER=10000000
export ACCESS_TOKEN_TTL=$((DURATION / 60 + 10))m
cleanup() {
	bash scripts/cluster.sh stop >/dev/null 2>&1 || true
	rm -rf "$state"
}
trap cleanup EXIT
bash scripts/cluster.sh start >"$state/cluster.out" 2>&1 &
base=http://$CLUSTER_ADDR
for _ in $(seq 600); do
	curl -fs -o /dev/null "$base/healthz" && break
	sleep 0.2
done
curl -fs -o /dev/null "$base/healthz" || { cat "$state/cluster.out" >&2; die "the cluster did not start"; }
metrics=$(sed -n 's/.*(metrics \([^)]*\)).*/\1/p' "$state/cluster.out")
pids=$(cat .data/cluster/app*.pid)

user=soak$RANDOM password=Soak-pass-phrase-$RANDOM
body="{\"username\":\"$user\",\"password\":\"$password\"}"
curl -fs -o /dev/null -H 'Content-Type: application/json' -d "$body" "$base/api/register/"
token=$(curl -fs -H 'Content-Type: application/json' -d "$body" "$base/api/token/" | sed -n 's/.*"access":"\([^"]*\)".*/\1/p')
[ -n "$token" ] || die "no access token"
task=$(curl -fs -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d '{"title":"Soak"}' "$base/api/tasks/" |
	sed -n 's/.*"id":"\([^"]*\)".*/\1/p')

cat >"$state/soak.lua" <<EOF
local n = 0
request = function()
  n = n + 1
  local k = n % 8
  if k == 0 or k == 4 then
    -- Given headers replace wrk.headers (the -H flags), so this names both.
    return wrk.format("POST", "/api/tasks/", {["Authorization"] = "Bearer $token", ["Content-Type"] = "application/json"},
      '{"title":"Soak task","description":"soak"}')
  elseif k == 2 then
    return wrk.format("GET", "/api/tasks/$task/")
  elseif k == 6 then
    return wrk.format("GET", "/api/me/")
  end
  return wrk.format("GET", "/api/tasks/?limit=20")
end
function delay() return $DELAY_MS end
function done(s, l, r)
  io.write(string.format("WRK requests=%d non2xx=%d errors=%d p50_ms=%.2f p99_ms=%.2f\n", s.requests, s.errors.status,
    s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout, l:percentile(50) / 1000, l:percentile(99) / 1000))
end
EOF

sample() { # label -> one line per instance
	local label=$1 i=0 pid addr rss gor
	# shellcheck disable=SC2086 # one word per instance
	set -- $metrics
	for pid in $pids; do
		i=$((i + 1))
		addr=${!i:-}
		rss=$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status" 2>/dev/null || echo "?")
		gor=$(curl -fs "http://$addr/metrics" 2>/dev/null | awk '/^go_goroutines / {print $2}')
		printf '%s instance=%d rss_mib=%s goroutines=%s\n' "$label" "$i" "$rss" "${gor:-?}"
	done
}

log "soaking $base for ${DURATION}s: $CONNECTIONS connections, ${DELAY_MS} ms between requests each"
wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$state/soak.lua" -H "Authorization: Bearer $token" "$base" >"$state/wrk.out" 2>&1 &
wrk_pid=$!
elapsed=0
sample "t=0s" | tee "$state/samples"
while kill -0 "$wrk_pid" 2>/dev/null; do
	sleep "$EVERY"
	elapsed=$((elapsed + EVERY))
	kill -0 "$wrk_pid" 2>/dev/null || break
	sample "t=${elapsed}s" | tee -a "$state/samples"
done
wait "$wrk_pid" || true
sample "t=end" | tee -a "$state/samples"
grep '^WRK' "$state/wrk.out" || { cat "$state/wrk.out" >&2; die "wrk failed"; }
grep -q '^WRK.* non2xx=0 ' "$state/wrk.out" || log "some answers were not 2xx: the figures above are not a clean soak"
awk '{for (i = 2; i <= NF; i++) {split($i, kv, "="); v[$1, $2, kv[1]] = kv[2]} first[$2] = first[$2] ? first[$2] : $1; last[$2] = $1}
	END {for (inst in first) {split(inst, x, "="); i = x[2]
		printf "growth instance=%s rss_mib %s -> %s, goroutines %s -> %s\n", i,
			v[first[inst], inst, "rss_mib"], v[last[inst], inst, "rss_mib"], v[first[inst], inst, "goroutines"], v[last[inst], inst, "goroutines"]}}' \
	"$state/samples" | sort
