#!/usr/bin/env bash
# Throwaway/local PostgreSQL clusters for development and tests.
#
#   scripts/pg.sh start DIR PORT [fast]   create the cluster in DIR if absent and start it
#                                         on 127.0.0.1:PORT (idempotent); "fast" turns off
#                                         fsync & co. (only for disposable test clusters)
#   scripts/pg.sh stop DIR                stop it (no error if it is not running)
#   scripts/pg.sh status DIR              exit 0 if running, 3 if not
#   scripts/pg.sh createdb PORT NAME      create database NAME if it does not exist
#
# The cluster trusts every connection (initdb --auth=trust), listens on 127.0.0.1 only,
# and puts its Unix socket and its log (DIR/postgres.log) inside DIR, so it needs no
# system directory such as /var/run/postgresql. Clients should use TCP:
#   postgres://postgres@127.0.0.1:PORT/NAME?sslmode=disable
#
# PostgreSQL refuses to run as root. When this script runs as root, it runs initdb,
# pg_ctl and postgres as the unprivileged OS user "postgres" (created if missing) via
# runuser, and hands DIR to that user. When not root (a laptop), it runs them directly.
#
# Environment: PG_BIN overrides where initdb/pg_ctl/pg_isready/psql are looked up
# (default /usr/lib/postgresql/15/bin, else whatever initdb is on PATH).
set -euo pipefail

PG_USER=postgres
PG_MAJOR=15

die() { echo "pg.sh: $*" >&2; exit 1; }
note() { echo "pg.sh: $*" >&2; }
is_root() { [ "$(id -u)" -eq 0 ]; }

usage() {
	sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# find_pg_bin sets PG_BIN to a directory holding initdb and pg_ctl, installing
# PostgreSQL from Debian when root and it is missing.
find_pg_bin() {
	if [ -n "${PG_BIN:-}" ]; then
		[ -x "$PG_BIN/initdb" ] || die "PG_BIN=$PG_BIN has no initdb"
		return
	fi
	PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
	[ -x "$PG_BIN/initdb" ] && return
	if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
		PG_BIN=$(dirname "$(command -v initdb)")
		return
	fi
	if is_root && command -v apt-get >/dev/null 2>&1; then
		note "PostgreSQL $PG_MAJOR server not found; installing postgresql-$PG_MAJOR with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q >&2
		apt-get install -y -q "postgresql-$PG_MAJOR" >&2
		PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
		[ -x "$PG_BIN/initdb" ] || die "installed postgresql-$PG_MAJOR but $PG_BIN/initdb is still missing"
		return
	fi
	die "PostgreSQL server binaries not found (looked in /usr/lib/postgresql/$PG_MAJOR/bin and PATH).
Install them, e.g. 'sudo apt-get install postgresql-$PG_MAJOR' on Debian/Ubuntu or
'brew install postgresql@$PG_MAJOR' on macOS, or point PG_BIN at the directory holding initdb."
}

# client finds a client program (psql, pg_isready) next to the server binaries,
# falling back to PATH.
client() {
	if [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/$1" ]; then
		echo "$PG_BIN/$1"
	elif [ -x "/usr/lib/postgresql/$PG_MAJOR/bin/$1" ]; then
		echo "/usr/lib/postgresql/$PG_MAJOR/bin/$1"
	elif command -v "$1" >/dev/null 2>&1; then
		command -v "$1"
	else
		die "$1 not found; install postgresql-client-$PG_MAJOR"
	fi
}

ensure_pg_user() {
	id -u "$PG_USER" >/dev/null 2>&1 && return
	note "creating system user $PG_USER"
	useradd --system --home-dir /var/lib/postgresql --shell /bin/bash "$PG_USER"
}

# as_pg runs a command as the cluster's owner: the postgres user when we are root,
# ourselves otherwise. It starts from / so that a working directory the postgres
# user cannot read (e.g. under /root) does not upset initdb or pg_ctl.
as_pg() {
	if is_root; then
		(cd / && runuser -u "$PG_USER" -- "$@")
	else
		"$@"
	fi
}

# ensure_traversable makes every ancestor of $1 searchable by the postgres user.
#
# Why: when root, the server runs as "postgres" and must reach DIR by its path, e.g.
# /work/main/.data/pg or a mktemp dir. A mode-700 ancestor (a home directory such as
# /root, or a directory created under umask 077) would make initdb fail with
# "Permission denied". The alternatives were worse: putting the cluster somewhere else
# (say /var/lib/postgresql) would leave clusters of different checkouts colliding and
# make "rm -rf .data" not remove it. So we add only the search bit ("x", not "r") to
# "other" on exactly those ancestors the postgres user cannot traverse, and say so:
# this lets processes that already know a path below it reach it, but not list it.
# Ancestors are checked top-down because a directory's own bit only matters once all
# directories above it can be traversed.
ensure_traversable() {
	local target=$1 path="" part
	local -a parts
	IFS=/ read -r -a parts <<<"${target#/}"
	for part in "${parts[@]}"; do
		[ -n "$part" ] || continue
		path="$path/$part"
		[ "$path" = "$target" ] && break
		if ! (cd / && runuser -u "$PG_USER" -- test -x "$path"); then
			note "making $path traversable (chmod o+x) so that user $PG_USER can reach $target"
			chmod o+x "$path"
		fi
	done
}

# conf_quote quotes a value for postgresql.conf.
conf_quote() { printf "'%s'" "${1//\'/\'\'}"; }

is_running() {
	[ -f "$1/PG_VERSION" ] || return 1
	as_pg "$PG_BIN/pg_ctl" status -D "$1" >/dev/null 2>&1
}

cmd_start() {
	if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
	local dir port=$2 fast=${3:-}
	case $port in '' | *[!0-9]*) die "PORT must be a number, got '$port'" ;; esac
	[ -z "$fast" ] || [ "$fast" = fast ] || die "third argument must be 'fast', got '$fast'"
	dir=$(realpath -m -- "$1")

	find_pg_bin
	is_root && ensure_pg_user

	if is_running "$dir"; then
		local running_port
		# Line 4 of postmaster.pid is the port the server listens on.
		running_port=$(sed -n 4p "$dir/postmaster.pid" 2>/dev/null || true)
		if [ -n "$running_port" ] && [ "$running_port" != "$port" ]; then
			die "already running in $dir but on port $running_port, not $port; stop it first (scripts/pg.sh stop $dir)"
		fi
		note "already running in $dir"
		return 0
	fi

	if [ ! -f "$dir/PG_VERSION" ]; then
		if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
			die "$dir exists, is not empty and holds no PostgreSQL cluster; refusing to touch it"
		fi
		mkdir -p "$dir"
	fi
	if is_root; then
		ensure_traversable "$dir"
		chown -R "$PG_USER:" "$dir"
	fi
	chmod 700 "$dir"

	if [ ! -f "$dir/PG_VERSION" ]; then
		local -a locale_opt=(--no-locale)
		if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
			locale_opt=(--locale=C.UTF-8)
		fi
		note "creating cluster in $dir"
		if ! as_pg "$PG_BIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 "${locale_opt[@]}" \
			>"$dir.initdb.log" 2>&1; then
			cat "$dir.initdb.log" >&2
			rm -f "$dir.initdb.log"
			die "initdb failed"
		fi
		rm -f "$dir.initdb.log"
		# Settings that change between starts (port, fast mode) live in their own file,
		# rewritten on every start.
		printf "\ninclude_if_exists = 'taskmanager.conf'\n" >>"$dir/postgresql.conf"
	fi

	# A Unix socket path is limited to ~107 bytes; a deep DIR would make postgres fail
	# to start, so fall back to TCP only (all our clients use TCP anyway).
	local sockdir=$dir
	if [ $((${#dir} + ${#port} + 12)) -gt 100 ]; then
		note "$dir is too long for a Unix socket path; listening on TCP only"
		sockdir=""
	fi
	{
		echo "# Written by scripts/pg.sh on every start; edits are lost."
		echo "listen_addresses = '127.0.0.1'"
		echo "port = $port"
		echo "unix_socket_directories = $(conf_quote "$sockdir")"
		echo "max_connections = 200"
		if [ "$fast" = fast ]; then
			echo "# fast: disposable cluster, durability traded for speed"
			echo "fsync = off"
			echo "synchronous_commit = off"
			echo "full_page_writes = off"
		fi
	} >"$dir/taskmanager.conf"
	is_root && chown "$PG_USER:" "$dir/taskmanager.conf"

	if ! as_pg "$PG_BIN/pg_ctl" start -D "$dir" -l "$dir/postgres.log" -w -t 60 >/dev/null; then
		tail -n 30 "$dir/postgres.log" >&2 || true
		die "could not start PostgreSQL in $dir on 127.0.0.1:$port (see $dir/postgres.log)"
	fi

	local isready tries=0
	isready=$(client pg_isready)
	while [ $tries -lt 60 ]; do
		tries=$((tries + 1))
		if "$isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
			note "PostgreSQL running in $dir on 127.0.0.1:$port"
			return 0
		fi
		sleep 0.5
	done
	tail -n 30 "$dir/postgres.log" >&2 || true
	die "PostgreSQL in $dir started but does not answer on 127.0.0.1:$port"
}

cmd_stop() {
	[ $# -eq 1 ] || usage
	local dir
	dir=$(realpath -m -- "$1")
	if [ ! -f "$dir/PG_VERSION" ]; then
		note "no cluster in $dir; nothing to stop"
		return 0
	fi
	find_pg_bin
	if ! is_running "$dir"; then
		note "not running in $dir"
		return 0
	fi
	as_pg "$PG_BIN/pg_ctl" stop -D "$dir" -m fast -w -t 60 >/dev/null
	note "stopped PostgreSQL in $dir"
}

cmd_status() {
	[ $# -eq 1 ] || usage
	local dir
	dir=$(realpath -m -- "$1")
	[ -f "$dir/PG_VERSION" ] || { echo "no cluster in $dir"; return 3; }
	find_pg_bin
	if is_running "$dir"; then
		echo "running in $dir"
	else
		echo "not running in $dir"
		return 3
	fi
}

cmd_createdb() {
	[ $# -eq 2 ] || usage
	local port=$1 name=$2 psql exists
	case $port in '' | *[!0-9]*) die "PORT must be a number, got '$port'" ;; esac
	[ -n "$name" ] || die "database name is empty"
	psql=$(client psql)
	# Variables are passed with -v and interpolated by psql (:'name', :"name"), which
	# quotes them; that only works for SQL read from stdin, not for -c.
	local -a q=("$psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres -v "name=$name")
	exists=$("${q[@]}" -tA <<<"SELECT 1 FROM pg_database WHERE datname = :'name';")
	if [ "$exists" = 1 ]; then
		note "database $name exists"
		return 0
	fi
	"${q[@]}" <<<'CREATE DATABASE :"name";'
	note "created database $name"
}

[ $# -ge 1 ] || usage
sub=$1
shift
case $sub in
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
status) cmd_status "$@" ;;
createdb) cmd_createdb "$@" ;;
*) usage ;;
esac
