#!/usr/bin/env bash
# A local cluster (`make cluster`, `make cluster-stop`): three `taskmanager serve`
# instances on loopback behind Debian's haproxy (deploy/haproxy.cfg), sharing one Redis
# for rate limits and the local PostgreSQL of `make run` (.data/pg on $PGPORT_DEV).
#
#   scripts/cluster.sh start   build, start PostgreSQL (unless it runs), migrate, start
#                              redis-server and the three instances in the background,
#                              print the address, then run haproxy in the foreground;
#                              Ctrl-C (or `make cluster-stop` elsewhere) stops everything
#                              it started
#   scripts/cluster.sh stop    stop what a `start` started (by the pids it recorded in
#                              .data/cluster), PostgreSQL only if it started it
#
# CLUSTER_ADDR (default 127.0.0.1:8080) is where clients connect. Logs and pids are in
# .data/cluster/. Run as root, missing haproxy and redis-server are installed with apt-get.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib.sh
LOG_PREFIX="cluster:"
root=$(pwd)
state=$root/.data/cluster
PGPORT_DEV=${PGPORT_DEV:-54329}

# stop_pidfile FILE stops the process FILE names, if it still runs, and removes FILE.
stop_pidfile() {
	local f=$1 pid
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$f"
}

stop_all() {
	local f
	for f in "$state"/haproxy.pid "$state"/app*.pid "$state"/redis.pid; do
		stop_pidfile "$f"
	done
	if [ -f "$state/pg.started" ]; then
		bash scripts/pg.sh stop "$root/.data/pg"
		rm -f "$state/pg.started"
	fi
}

ensure_tools() {
	local -a missing=()
	command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
	command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
	[ ${#missing[@]} -gt 0 ] || return 0
	[ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}: sudo apt-get install ${missing[*]}"
	log "installing ${missing[*]} with apt-get"
	apt_install "${missing[@]}"
}

wait_for() {
	local what=$1 url=$2
	for _ in $(seq 100); do
		http_ok "$url" && return 0
		sleep 0.1
	done
	die "$what did not answer $url within 10 s (logs in .data/cluster/)"
}

start() {
	export CLUSTER_ADDR=${CLUSTER_ADDR:-127.0.0.1:8080}
	if addr_taken "$CLUSTER_ADDR"; then
		die "$CLUSTER_ADDR is taken (a cluster already running? make cluster-stop); or set CLUSTER_ADDR"
	fi
	ensure_tools
	local haproxy_bin
	haproxy_bin=$(command -v haproxy || echo /usr/sbin/haproxy)
	mkdir -p "$state"
	trap stop_all EXIT
	trap 'exit 130' INT TERM

	log "go build -o bin/taskmanager ./cmd/taskmanager"
	go build -ldflags "-X main.version=${VERSION:-dev}" -o bin/taskmanager ./cmd/taskmanager
	if ! bash scripts/pg.sh status "$root/.data/pg" >/dev/null 2>&1; then
		bash scripts/pg.sh start "$root/.data/pg" "$PGPORT_DEV"
		touch "$state/pg.started"
	fi
	bash scripts/pg.sh createdb "$PGPORT_DEV" taskmanager
	DATABASE_URL=$(pg_url "$PGPORT_DEV" taskmanager)
	export DATABASE_URL
	if [ -z "${JWT_SIGNING_KEY:-}" ]; then
		local keyfile=.data/jwt_signing_key
		[ -s "$keyfile" ] || (umask 077 && random_hex 32 >"$keyfile")
		JWT_SIGNING_KEY=$(cat "$keyfile")
		export JWT_SIGNING_KEY
	fi
	bin/taskmanager migrate >&2

	local redis_port
	redis_port=$(free_port)
	redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
		--dir "$state" --logfile "$state/redis.log" --daemonize no &
	echo $! >"$state/redis.pid"
	export REDIS_URL="redis://127.0.0.1:$redis_port/0"

	local i port mport
	for i in 1 2 3; do
		port=$(free_port) mport=$(free_port)
		export "APP${i}_ADDR=127.0.0.1:$port" "APP${i}_METRICS=127.0.0.1:$mport"
		# Each instance needs a metrics port of its own: the default, 9464, fits one.
		APP_ENV=${APP_ENV:-development} LISTEN_ADDR=127.0.0.1:$port METRICS_ADDR=127.0.0.1:$mport \
			TRUSTED_PROXIES=127.0.0.1/32 \
			LOG_FILE="$state/app$i.log" bin/taskmanager serve >/dev/null 2>>"$state/app$i.stderr" &
		echo $! >"$state/app$i.pid"
	done
	for i in 1 2 3; do
		port=APP${i}_ADDR
		wait_for "instance $i" "http://${!port}/healthz"
	done
	log "instances: $APP1_ADDR $APP2_ADDR $APP3_ADDR (metrics $APP1_METRICS $APP2_METRICS $APP3_METRICS); Redis $REDIS_URL; PostgreSQL $DATABASE_URL"
	echo "cluster: serving http://$CLUSTER_ADDR (haproxy in front of 3 instances); Ctrl-C or make cluster-stop stops it" >&2
	"$haproxy_bin" -db -f deploy/haproxy.cfg &
	echo $! >"$state/haproxy.pid"
	wait "$(cat "$state/haproxy.pid")" || true
}

case ${1:-} in
start) start ;;
stop)
	[ -d "$state" ] || { echo "cluster: nothing to stop" >&2; exit 0; }
	stop_all
	echo "cluster: stopped" >&2
	;;
*)
	sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
