#!/usr/bin/env bash
# End-to-end smoke test (`make smoke`): runs the Postman collection
# api/taskmanager.postman_collection.json with newman against a real server.
#
#   scripts/smoke.sh                 build bin/taskmanager, start a throwaway PostgreSQL
#                                    cluster (mktemp dir, free port), migrate, serve on a
#                                    free 127.0.0.1 port, run the collection, stop both
#   SMOKE_BASE_URL=http://127.0.0.1:8000 scripts/smoke.sh
#                                    run the collection against a server already running
#
# Extra arguments go to `newman run` (e.g. scripts/smoke.sh --verbose).
# The exit status is newman's. The server and the cluster are stopped, and the cluster's
# temporary directory removed, on exit whatever happens. newman comes from package.json
# (npm ci when node_modules is missing); node and npm are installed with apt-get when
# missing and running as root.
set -euo pipefail

cd "$(dirname "$0")/.."

COLLECTION=api/taskmanager.postman_collection.json
ENVIRONMENT=api/taskmanager.postman_environment.json

log() { echo "== smoke: $*" >&2; }

# free_port prints a TCP port nobody listens on at 127.0.0.1 (as scripts/test.sh).
free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
		return
	fi
	local port=${1:-55432}
	local last=$((port + 1000))
	# A refused connection means the port is free.
	while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
		port=$((port + 1))
		[ "$port" -lt "$last" ] || { echo "no free port found from ${1:-55432}" >&2; return 1; }
	done
	echo "$port"
}

# http_ok URL exits 0 when URL answers 2xx.
http_ok() {
	if command -v curl >/dev/null 2>&1; then
		curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null
	else
		node -e 'require("http").get(process.argv[1], r => process.exit(r.statusCode >= 200 && r.statusCode < 300 ? 0 : 1)).on("error", () => process.exit(1))' "$1"
	fi
}

ensure_newman() {
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
			log "node/npm not found; installing nodejs and npm with apt-get"
			DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >&2
		else
			echo "node and npm are required for newman: sudo apt-get install nodejs npm" >&2
			return 1
		fi
	fi
	if [ ! -x node_modules/.bin/newman ]; then
		log "npm ci (newman from package-lock.json)"
		npm ci --no-audit --no-fund >&2
	fi
}

SMOKE_TMP=""
PG_TMP=""
SERVER_PID=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
	local status=$?
	if [ -n "$SERVER_PID" ]; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	if [ -n "$PG_TMP" ]; then
		bash scripts/pg.sh stop "$PG_TMP" || true
	fi
	if [ -n "$SMOKE_TMP" ]; then
		rm -rf "$SMOKE_TMP"
	fi
	exit "$status"
}

start_postgres() {
	SMOKE_TMP=$(mktemp -d "${TMPDIR:-/tmp}/taskmanager-smoke.XXXXXX")
	PG_TMP=$SMOKE_TMP/pg
	local port attempt
	# The port is free when picked but could be taken before postgres binds it; retry.
	for attempt in 1 2 3; do
		port=$(free_port 55432)
		if bash scripts/pg.sh start "$PG_TMP" "$port" fast; then
			bash scripts/pg.sh createdb "$port" taskmanager
			export DATABASE_URL="postgres://postgres@127.0.0.1:$port/taskmanager?sslmode=disable"
			log "DATABASE_URL=$DATABASE_URL"
			return 0
		fi
		echo "attempt $attempt to start PostgreSQL on port $port failed" >&2
	done
	return 1
}

# start_server sets BASE_URL to a freshly started bin/taskmanager serve.
start_server() {
	local port attempt tries
	export APP_ENV=development
	export ALLOWED_HOSTS=127.0.0.1,localhost
	if command -v openssl >/dev/null 2>&1; then
		JWT_SIGNING_KEY=$(openssl rand -hex 32)
	else
		JWT_SIGNING_KEY=$(head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
	fi
	export JWT_SIGNING_KEY
	for attempt in 1 2 3; do
		port=$(free_port 18000)
		BASE_URL="http://127.0.0.1:$port"
		log "bin/taskmanager serve on 127.0.0.1:$port (log: $SMOKE_TMP/server.log)"
		LISTEN_ADDR="127.0.0.1:$port" bin/taskmanager serve >"$SMOKE_TMP/server.log" 2>&1 &
		SERVER_PID=$!
		tries=0
		while [ "$tries" -lt 100 ]; do
			if ! kill -0 "$SERVER_PID" 2>/dev/null; then
				break
			fi
			if http_ok "$BASE_URL/healthz"; then
				return 0
			fi
			tries=$((tries + 1))
			sleep 0.1
		done
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=""
		tail -n 20 "$SMOKE_TMP/server.log" >&2 || true
		echo "attempt $attempt to start the server on port $port failed" >&2
	done
	return 1
}

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_newman

if [ -n "${SMOKE_BASE_URL:-}" ]; then
	BASE_URL=${SMOKE_BASE_URL%/}
	log "using the running server at $BASE_URL"
else
	log "go build -o bin/taskmanager ./cmd/taskmanager"
	go build -o bin/taskmanager ./cmd/taskmanager
	start_postgres
	log "bin/taskmanager migrate"
	bin/taskmanager migrate
	start_server
fi

log "newman run $COLLECTION against $BASE_URL"
status=0
npx newman run "$COLLECTION" -e "$ENVIRONMENT" --env-var "base_url=$BASE_URL" "$@" || status=$?
if [ "$status" -ne 0 ] && [ -n "$SMOKE_TMP" ] && [ -f "$SMOKE_TMP/server.log" ]; then
	echo "== smoke: newman failed (exit $status); last server log lines:" >&2
	tail -n 40 "$SMOKE_TMP/server.log" >&2 || true
fi
exit "$status"
