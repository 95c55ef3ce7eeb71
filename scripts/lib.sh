# shellcheck shell=bash
# Helpers shared by scripts/test.sh, smoke.sh, bench.sh and run.sh; not a command.
# Source it after cd-ing to the repository root (the paths below are relative to it):
#
#   cd "$(dirname "$0")/.."
#   # shellcheck source-path=SCRIPTDIR/..
#   . scripts/lib.sh
#
# What it offers:
#   log MSG...                     "== MSG" on stderr ("== $LOG_PREFIX MSG" when the
#                                  script sets LOG_PREFIX)
#   die MSG...                     "SCRIPT: MSG" on stderr, exit 1
#   apt_install PKG...             apt-get update + install, quietly, output on stderr
#   ensure_node_tools BIN...       node and npm (installed with apt-get as root when
#                                  missing), and `npm ci` (package-lock.json) when
#                                  node_modules/.bin lacks one of BIN or node_modules
#                                  is older than package-lock.json
#   free_port [FIRST]              a TCP port nobody listens on at 127.0.0.1
#   addr_taken HOST:PORT           exit 0 when something accepts connections at that
#                                  listen address (":8000", "0.0.0.0:8000" and
#                                  "[::]:8000" are probed on loopback)
#   random_hex N                   N random bytes as 2N lowercase hex digits
#   http_ok URL                    exit 0 when URL answers 2xx
#   make_temp_dir NAME             TMP_DIR=a new ${TMPDIR:-/tmp}/taskmanager-NAME.XXXXXX
#   pg_url PORT DBNAME             the URL of database DBNAME of a pg.sh cluster on PORT
#   start_throwaway_postgres DIR [DBNAME]
#                                  a disposable (fsync off) pg.sh cluster in DIR on a free
#                                  port; sets PG_DIR and PG_SUPERUSER_URL; with DBNAME
#                                  also creates that database and exports DATABASE_URL
#   start_server DIR [VAR=VALUE...]
#                                  bin/taskmanager serve on a free 127.0.0.1 port (log:
#                                  DIR/server.log); sets SERVER_PID and BASE_URL once it
#                                  answers /healthz
#   stop_server                    stop the server started by start_server, if any
#   cleanup_on_exit                on exit, however the script ends: run the script's
#                                  before_cleanup STATUS if it defines one, then stop the
#                                  server and the cluster and remove TMP_DIR
#
# The scripts run with set -euo pipefail; so do these functions.

LOG_PREFIX=""
TMP_DIR=""
PG_DIR=""
PG_SUPERUSER_URL=""
SERVER_PID=""
BASE_URL=""

log() { echo "== ${LOG_PREFIX:+$LOG_PREFIX }$*" >&2; }
die() { echo "${0##*/}: $*" >&2; exit 1; }

apt_install() {
	DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2
}

ensure_node_tools() {
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
			log "node/npm not found; installing nodejs and npm with apt-get"
			apt_install nodejs npm
		else
			echo "node and npm are required: sudo apt-get install nodejs npm" >&2
			return 1
		fi
	fi
	# npm writes node_modules/.package-lock.json on every install: older than the lock
	# file means a checkout changed the tools since (a pinned version, a new package).
	if [ ! -e node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
		log "npm ci (node tools from package-lock.json; node_modules is missing or older)"
		npm ci --no-audit --no-fund >&2
		return
	fi
	local bin
	for bin in "$@"; do
		if [ ! -x "node_modules/.bin/$bin" ]; then
			log "npm ci (node tools from package-lock.json; node_modules/.bin/$bin is missing)"
			npm ci --no-audit --no-fund >&2
			return
		fi
	done
}

# free_port prints a TCP port nobody listens on at 127.0.0.1. Without python3 it probes
# FIRST (default 55432) and the 999 ports after it.
free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
		return
	fi
	local first=${1:-55432} port last
	port=$first
	last=$((first + 999))
	# A refused connection means the port is free.
	while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
		port=$((port + 1))
		[ "$port" -le "$last" ] || { echo "no free port found in $first-$last" >&2; return 1; }
	done
	echo "$port"
}

# addr_taken HOST:PORT exits 0 when a server accepts TCP connections at the address a
# listener for HOST:PORT (LISTEN_ADDR's form) would bind. A connection, not a test bind:
# a bind would need python3, and Go's SO_REUSEADDR and a leftover TIME_WAIT socket make
# bind tests disagree with the server. Port 0 (any free port) is never taken.
addr_taken() {
	local addr=$1 host port
	port=${addr##*:}
	host=${addr%:*}
	host=${host#[}
	host=${host%]}
	case $host in "" | 0.0.0.0 | ::) host=127.0.0.1 ;; esac
	[ "$port" != 0 ] || return 1
	# A refused connection means nobody listens; timeout guards a filtered address.
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
}

# random_hex N prints N random bytes in hex (-v: od must not abbreviate repeated lines).
random_hex() { od -An -v -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# http_ok URL exits 0 when URL answers 2xx.
http_ok() {
	if command -v curl >/dev/null 2>&1; then
		curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null
	else
		node -e 'require("http").get(process.argv[1], r => process.exit(r.statusCode >= 200 && r.statusCode < 300 ? 0 : 1)).on("error", () => process.exit(1))' "$1"
	fi
}

make_temp_dir() {
	TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/taskmanager-$1.XXXXXX")
}

pg_url() { echo "postgres://postgres@127.0.0.1:$1/$2?sslmode=disable"; }

start_throwaway_postgres() {
	local dir=$1 dbname=${2:-} port attempt
	PG_DIR=$dir
	# The port is free when picked but could be taken before postgres binds it; retry.
	for attempt in 1 2 3; do
		port=$(free_port)
		# pg.sh wants DIR absent or empty; a failed attempt may leave files behind.
		[ "$attempt" -eq 1 ] || rm -rf "$dir"
		if bash scripts/pg.sh start "$dir" "$port" fast; then
			# shellcheck disable=SC2034 # for the scripts that source this file
			PG_SUPERUSER_URL=$(pg_url "$port" postgres)
			if [ -n "$dbname" ]; then
				bash scripts/pg.sh createdb "$port" "$dbname"
				DATABASE_URL=$(pg_url "$port" "$dbname")
				export DATABASE_URL
			fi
			return 0
		fi
		echo "attempt $attempt to start PostgreSQL on port $port failed" >&2
	done
	echo "${0##*/}: could not start PostgreSQL" >&2
	return 1
}

# start_server DIR [VAR=VALUE...] starts bin/taskmanager serve with APP_ENV=development,
# a random JWT_SIGNING_KEY and the given variables, and waits for /healthz.
start_server() {
	local dir=$1 port attempt tries
	shift
	# METRICS_ADDR: a free port, so a throwaway server never fights a `make run` over 9464.
	local -a vars=(APP_ENV=development "JWT_SIGNING_KEY=$(random_hex 32)" METRICS_ADDR=127.0.0.1:0 "$@")
	# As with PostgreSQL, the port may be taken between free_port and the server's bind;
	# the server then exits at once, and we try another port.
	for attempt in 1 2 3; do
		port=$(free_port 18000)
		BASE_URL="http://127.0.0.1:$port"
		log "bin/taskmanager serve on 127.0.0.1:$port (log: $dir/server.log)"
		env "${vars[@]}" LISTEN_ADDR="127.0.0.1:$port" bin/taskmanager serve >"$dir/server.log" 2>&1 &
		SERVER_PID=$!
		tries=0
		while kill -0 "$SERVER_PID" 2>/dev/null; do
			if http_ok "$BASE_URL/healthz"; then
				return 0
			fi
			tries=$((tries + 1))
			if [ "$tries" -ge 200 ]; then
				stop_server
				tail -n 20 "$dir/server.log" >&2 || true
				echo "${0##*/}: the server did not answer /healthz within 20 s" >&2
				return 1
			fi
			sleep 0.1
		done
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=""
		tail -n 20 "$dir/server.log" >&2 || true
		echo "attempt $attempt to start the server on port $port failed" >&2
	done
	echo "${0##*/}: could not start the server" >&2
	return 1
}

stop_server() {
	if [ -n "$SERVER_PID" ]; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=""
	fi
}

# cleanup_on_exit arranges for the script, however it ends (error, exit, Ctrl-C, TERM),
# to run its function before_cleanup STATUS (if it defines one), stop the server and the
# cluster and remove TMP_DIR, and then to exit with its own status. INT and TERM become
# exits (130, 143) so that the EXIT trap runs for them too.
cleanup_on_exit() {
	trap _cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
_cleanup() {
	local status=$?
	if declare -F before_cleanup >/dev/null; then before_cleanup "$status" || true; fi
	stop_server
	if [ -n "$PG_DIR" ]; then
		bash scripts/pg.sh stop "$PG_DIR" || true
	fi
	if [ -n "$TMP_DIR" ]; then
		rm -rf "$TMP_DIR"
	fi
	exit "$status"
}
