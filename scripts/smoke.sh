#!/usr/bin/env bash
# End-to-end smoke test (`make smoke`): runs the Postman collection
# api/taskmanager.postman_collection.json with newman against a real server.
#
#   scripts/smoke.sh                 build bin/taskmanager, start a throwaway PostgreSQL
#                                    cluster (mktemp dir, free port), migrate, serve on a
#                                    free 127.0.0.1 port, run the collection, stop both
#   SMOKE_BASE_URL=http://127.0.0.1:8000 scripts/smoke.sh
#                                    run the collection against a server already running
#                                    (SMOKE_ADMIN_USERNAME, SMOKE_ADMIN_PASSWORD: an admin
#                                    for the OAuth client requests, skipped without one)
#
# Extra arguments go to `newman run` (e.g. scripts/smoke.sh --verbose).
# The exit status is newman's. The server and the cluster are stopped, and the cluster's
# temporary directory removed, on exit whatever happens. newman comes from package.json
# (npm ci when node_modules is missing); node and npm are installed with apt-get when
# missing and running as root.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib.sh
LOG_PREFIX="smoke:"

COLLECTION=api/taskmanager.postman_collection.json
ENVIRONMENT=api/taskmanager.postman_environment.json

cleanup_on_exit

ensure_node_tools newman

if [ -n "${SMOKE_BASE_URL:-}" ]; then
	BASE_URL=${SMOKE_BASE_URL%/}
	log "using the running server at $BASE_URL"
else
	log "go build -o bin/taskmanager ./cmd/taskmanager"
	go build -o bin/taskmanager ./cmd/taskmanager
	make_temp_dir smoke
	start_throwaway_postgres "$TMP_DIR/pg" taskmanager
	log "DATABASE_URL=$DATABASE_URL"
	log "bin/taskmanager migrate"
	bin/taskmanager migrate
	# The OAuth folder registers a client, which takes an administrator.
	SMOKE_ADMIN_USERNAME=smoke-admin
	SMOKE_ADMIN_PASSWORD="Admin-$(random_hex 12)"
	log "bin/taskmanager createuser --username $SMOKE_ADMIN_USERNAME --admin"
	printf '%s\n' "$SMOKE_ADMIN_PASSWORD" | bin/taskmanager createuser --username "$SMOKE_ADMIN_USERNAME" --admin >&2
	start_server "$TMP_DIR" ALLOWED_HOSTS=127.0.0.1,localhost
fi

log "newman run $COLLECTION against $BASE_URL"
status=0
# Against a running server, SMOKE_ADMIN_USERNAME and SMOKE_ADMIN_PASSWORD name an
# administrator for the OAuth folder; without them its client requests are skipped.
npx newman run "$COLLECTION" -e "$ENVIRONMENT" --env-var "base_url=$BASE_URL" \
	--env-var "admin_username=${SMOKE_ADMIN_USERNAME:-}" --env-var "admin_password=${SMOKE_ADMIN_PASSWORD:-}" "$@" || status=$?
if [ "$status" -ne 0 ] && [ -n "$TMP_DIR" ] && [ -f "$TMP_DIR/server.log" ]; then
	log "newman failed (exit $status); last server log lines:"
	tail -n 40 "$TMP_DIR/server.log" >&2 || true
fi
exit "$status"
