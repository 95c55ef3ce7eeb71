#!/usr/bin/env bash
# Build and run the server for local development (`make run`).
#
# - checks that LISTEN_ADDR is free, before anything else, and stops with what to do
#   when another server has it;
# - builds bin/taskmanager;
# - without DATABASE_URL: starts (once) a local PostgreSQL cluster in .data/pg on
#   127.0.0.1:${PGPORT_DEV:-54329}, creates the database "taskmanager" and uses it;
#   with DATABASE_URL in the environment it uses that database instead, and says so;
# - without JWT_SIGNING_KEY: generates .data/jwt_signing_key once (mode 600) and uses it;
# - defaults APP_ENV=development and LISTEN_ADDR=127.0.0.1:8000;
# - applies migrations, then replaces itself with `bin/taskmanager serve`, which prints
#   the URL it serves and that of the interactive docs (/docs) once it listens.
#
# Listening elsewhere: the server listens on this machine only (127.0.0.1) unless told
# otherwise, because registration is open and the signing key is a development one.
#   LISTEN_ADDR=127.0.0.1:8001 make run     another port, e.g. beside a running server
#   LISTEN_ADDR=0.0.0.0:8000 make run       every interface: anyone who can reach this
#                                           machine can register and use the API; in
#                                           development the server also answers only
#                                           Host names in ALLOWED_HOSTS (default
#                                           localhost, 127.0.0.1, [::1]), so add the name
#                                           others use, e.g. ALLOWED_HOSTS=192.0.2.10
# The binary's own default, outside `make run`, is :8000 (every interface), as the
# contract says.
#
# The local cluster keeps running after the server stops; `make db-stop` stops it and
# `make clean` removes it together with the generated key.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib.sh
root=$(pwd)

export APP_ENV=${APP_ENV:-development}
export LISTEN_ADDR=${LISTEN_ADDR:-127.0.0.1:8000}

# Before the build and the migrations: a second `make run` must not spend a minute to
# learn that the first one has the port.
if addr_taken "$LISTEN_ADDR"; then
	port=${LISTEN_ADDR##*:}
	host=${LISTEN_ADDR%:*}
	echo "run.sh: cannot serve on $LISTEN_ADDR: another server already listens on port $port (a \`make run\` in another terminal?)." >&2
	echo "run.sh: stop that server (Ctrl-C in its terminal), or listen elsewhere: LISTEN_ADDR=${host:-127.0.0.1}:$((port + 1)) make run" >&2
	exit 1
fi

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
echo "run.sh: building bin/taskmanager ($VERSION)" >&2
go build -ldflags "-X main.version=$VERSION" -o bin/taskmanager ./cmd/taskmanager

mkdir -p .data

db_from_env=false
if [ -z "${DATABASE_URL:-}" ]; then
	port=${PGPORT_DEV:-54329}
	bash scripts/pg.sh start "$root/.data/pg" "$port"
	bash scripts/pg.sh createdb "$port" taskmanager
	DATABASE_URL=$(pg_url "$port" taskmanager)
	export DATABASE_URL
	echo "run.sh: using the local database $DATABASE_URL (cluster in .data/pg)" >&2
else
	db_from_env=true
	# Show where we connect, never the password.
	shown=$(printf '%s' "$DATABASE_URL" | sed -E 's#(://[^:/@]*):[^@]*@#\1:****@#; s#([?&]password=)[^&]*#\1****#')
	echo "run.sh: using DATABASE_URL from the environment: $shown" >&2
fi

if [ -z "${JWT_SIGNING_KEY:-}" ]; then
	keyfile=.data/jwt_signing_key
	if [ ! -s "$keyfile" ]; then
		(
			umask 077
			random_hex 32 >"$keyfile"
		)
		echo "run.sh: generated a JWT signing key in $keyfile" >&2
	fi
	chmod 600 "$keyfile"
	JWT_SIGNING_KEY=$(cat "$keyfile")
	export JWT_SIGNING_KEY
fi

if ! bin/taskmanager migrate; then
	if $db_from_env; then
		# The usual cause: an `export DATABASE_URL=...` for another database, earlier in
		# this shell, that is not running now.
		echo "run.sh: migrate failed on the database that DATABASE_URL names: $shown" >&2
		echo "run.sh: DATABASE_URL is set in your environment; unset it to use the local database \`make run\` starts: unset DATABASE_URL; make run" >&2
	fi
	exit 1
fi
echo "run.sh: starting the server on $LISTEN_ADDR (APP_ENV=$APP_ENV)" >&2
exec bin/taskmanager serve
