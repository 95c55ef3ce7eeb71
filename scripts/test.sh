#!/usr/bin/env bash
# The project's checks, as run by `make test` and CI.
#
#   scripts/test.sh          go vet, lint, go test -race against a throwaway PostgreSQL
#                            cluster, then scripts/smoke.sh and scripts/contract.sh (the
#                            default; what CI runs)
#   scripts/test.sh vet      go vet only
#   scripts/test.sh lint     staticcheck, and the checks of api/: redocly lint, portable
#                            patterns, the TypeScript types up to date and type-checked
#   scripts/test.sh unit     go test only (still with the throwaway cluster)
#
# Extra arguments after the mode go to `go test` (e.g. scripts/test.sh unit -run TestLogin ./internal/...).
#
# The tests get TEST_DATABASE_URL, a superuser URL to the "postgres" database of a
# cluster that lives in a mktemp directory for the duration of this script; tests
# create their own databases from it. The cluster is stopped and its directory
# removed on exit, whatever happens.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib.sh

# staticcheck 2026.2.2. The Go proxy serves honnef.co/go/tools by semantic version
# (v0.6.1 = 2025.1.1, v0.7.0 = 2026.1, v0.8.2 = 2026.2.2); `@2025.1.1` does not
# resolve through the proxy. v0.8.2 is the newest one and builds and runs with Go 1.26.
STATICCHECK_VERSION=${STATICCHECK_VERSION:-v0.8.2}

run_vet() {
	log "go vet ./..."
	go vet ./...
}

run_lint() {
	log "staticcheck ($STATICCHECK_VERSION) ./..."
	go run "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ./...
	# The OpenAPI document: a 3.1 validator and linter (rules in redocly.yaml).
	ensure_node_tools redocly
	log "redocly lint api/openapi.yaml"
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true node_modules/.bin/redocly lint api/openapi.yaml
	# Every pattern read as Postman and ECMA-262 without the u flag read it.
	log "node scripts/spec-patterns.mjs"
	node scripts/spec-patterns.mjs
	# Python's validator, where the machine has it (pip; PyPI is not reachable to install it).
	if python3 -c 'import openapi_spec_validator' 2>/dev/null; then
		log "python3 -m openapi_spec_validator api/openapi.yaml"
		python3 -m openapi_spec_validator api/openapi.yaml
	else
		log "openapi-spec-validator (pip) not installed: skipped"
	fi
	# api/client/schema.d.ts regenerated from the spec must be what is committed.
	log "scripts/client.sh check"
	bash scripts/client.sh check
}

GO_TEST_PID=""
# before_cleanup runs on exit (cleanup_on_exit in scripts/lib.sh), before the cluster
# is stopped and its directory removed.
# shellcheck disable=SC2317 # invoked by the EXIT trap
before_cleanup() {
	if [ -n "$GO_TEST_PID" ]; then
		# Interrupted while the tests run: stop the test binaries (children of the go
		# command) and go itself before pulling the database from under them.
		if command -v pkill >/dev/null 2>&1; then pkill -TERM -P "$GO_TEST_PID" 2>/dev/null || true; fi
		kill -TERM "$GO_TEST_PID" 2>/dev/null || true
		wait "$GO_TEST_PID" 2>/dev/null || true
	fi
	stop_redis
}

start_postgres() {
	make_temp_dir test-pg
	start_throwaway_postgres "$TMP_DIR"
	export TEST_DATABASE_URL=$PG_SUPERUSER_URL
	log "TEST_DATABASE_URL=$TEST_DATABASE_URL"
}

# --- Redis -------------------------------------------------------------------------
# A throwaway redis-server from Debian on a free loopback port, for the rate limiter's
# shared-counter tests; installed with apt-get when missing (as root).
REDIS_PID=""
# ensure_packages installs, in one apt-get run, the Debian packages the tests need
# and a fresh machine lacks: redis-server (shared rate limits), pgbouncer (the test
# behind a transaction pooler), haproxy (the fault test of a cluster), chromium (the
# browser test of /docs) and prometheus for its promtool (the alert rule tests and
# the lint of a real scrape). Off root it says what to install instead.
ensure_packages() {
	local -a missing=()
	command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
	command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
	command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
	[ -n "${CHROMIUM:-}" ] || [ -x /usr/bin/chromium ] || missing+=(chromium)
	[ -n "${PROMTOOL:-}" ] || command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
	[ ${#missing[@]} -gt 0 ] || return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing ${missing[*]}: sudo apt-get install ${missing[*]}" >&2
		return 1
	fi
	log "installing ${missing[*]} with apt-get"
	apt_install "${missing[@]}"
}

start_redis() {
	local port
	port=$(free_port)
	redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
		--dir "$TMP_DIR" --logfile "$TMP_DIR/redis.log" --daemonize no &
	REDIS_PID=$!
	local tries=0
	until redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; do
		tries=$((tries + 1))
		[ "$tries" -lt 50 ] || { echo "redis-server did not start" >&2; return 1; }
		sleep 0.1
	done
	export TEST_REDIS_URL="redis://127.0.0.1:$port/0"
	log "TEST_REDIS_URL=$TEST_REDIS_URL"
}
stop_redis() {
	if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
}
# -------------------------------------------------------------------------------------

run_unit() {
	cleanup_on_exit
	ensure_packages
	start_postgres
	start_redis
	local -a args=("$@")
	[ ${#args[@]} -gt 0 ] || args=(./...)
	log "go test -race -count=1 ${args[*]}"
	# In the background, so that a signal to this script runs cleanup at once instead
	# of after go test ends.
	local status=0
	go test -race -count=1 "${args[@]}" &
	GO_TEST_PID=$!
	wait "$GO_TEST_PID" || status=$?
	GO_TEST_PID=""
	return "$status"
}

mode=${1:-all}
[ $# -eq 0 ] || shift
case $mode in
all)
	run_vet
	run_lint
	run_unit "$@"
	# End-to-end: the Postman collection with newman against a real server (make smoke).
	log "scripts/smoke.sh"
	bash scripts/smoke.sh
	# Contract tests generated from the spec by Portman, every operation (make contract).
	log "scripts/contract.sh"
	bash scripts/contract.sh
	;;
vet) run_vet ;;
lint) run_lint ;;
unit) run_unit "$@" ;;
*)
	sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
