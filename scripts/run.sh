#!/usr/bin/env bash
# Build and run the server for local development (`make run`).
#
# - builds bin/taskmanager;
# - without DATABASE_URL: starts (once) a local PostgreSQL cluster in .data/pg on
#   127.0.0.1:${PGPORT_DEV:-54329}, creates the database "taskmanager" and uses it;
# - without JWT_SIGNING_KEY: generates .data/jwt_signing_key once (mode 600) and uses it;
# - defaults APP_ENV=development and LISTEN_ADDR=:8000;
# - applies migrations, then replaces itself with `bin/taskmanager serve`.
#
# The local cluster keeps running after the server stops; `make db-stop` stops it and
# `make clean` removes it together with the generated key.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib.sh
root=$(pwd)

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
echo "run.sh: building bin/taskmanager ($VERSION)" >&2
go build -ldflags "-X main.version=$VERSION" -o bin/taskmanager ./cmd/taskmanager

mkdir -p .data

if [ -z "${DATABASE_URL:-}" ]; then
	port=${PGPORT_DEV:-54329}
	bash scripts/pg.sh start "$root/.data/pg" "$port"
	bash scripts/pg.sh createdb "$port" taskmanager
	DATABASE_URL=$(pg_url "$port" taskmanager)
	export DATABASE_URL
	echo "run.sh: using the local database $DATABASE_URL (cluster in .data/pg)" >&2
else
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

export APP_ENV=${APP_ENV:-development}
export LISTEN_ADDR=${LISTEN_ADDR:-:8000}

bin/taskmanager migrate
echo "run.sh: serving on $LISTEN_ADDR (APP_ENV=$APP_ENV)" >&2
exec bin/taskmanager serve
