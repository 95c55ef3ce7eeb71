#!/usr/bin/env bash
# Contract tests (`make contract`, and part of `make test`): Portman turns api/openapi.yaml
# into a Postman collection with one request per operation, each with tests of the
# operation's documented success response (exact status code, Content-Type, JSON body,
# JSON schema, required headers), and newman runs it against a throwaway server and
# PostgreSQL. Any failure fails the script.
#
#   scripts/contract.sh      build bin/taskmanager, start a throwaway PostgreSQL cluster,
#                            migrate, create an admin user (createuser --admin), serve on a
#                            free 127.0.0.1 port with raised rate limits, generate the
#                            collection, run it, stop both
#
# Extra arguments go to `newman run` (e.g. scripts/contract.sh --verbose).
#
# What the run does lives in api/portman/portman-config.json: the folder and operation
# order (orderOfFolders, orderOfOperations), the variables it keeps (assignVariables: the
# registered user's id, the token pair, the task's id and ETag, the API key's id) and the
# request bodies and headers that make each request valid (overwrites, e.g. If-Match).
# Every operation of the spec is run; none is excluded. The operations that end sessions
# get sessions of their own, by a login in their pre-request script
# (api/portman/login.js): blacklistToken and deleteSession a spare session of the
# registered user, logoutAll a session of the admin (it ends every session of its caller),
# and the Administration folder logs the admin in again after that.
#
# Portman writes a tmp/ folder into its working directory and reads .env there, so it runs
# in the temporary directory, where `api` links to this repository's api/.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib.sh
LOG_PREFIX="contract:"

cleanup_on_exit

ensure_node_tools portman newman

REPO=$PWD
make_temp_dir contract
COLLECTION=$TMP_DIR/contract.postman_collection.json

log "portman: api/openapi.yaml -> $COLLECTION"
(
	cd "$TMP_DIR"
	ln -s "$REPO/api" api
	"$REPO/node_modules/.bin/portman" --local api/openapi.yaml \
		--portmanConfigFile api/portman/portman-config.json \
		--postmanConfigFile api/portman/postman-config.json \
		--baseUrl '{{baseUrl}}' --output "$COLLECTION" \
		--logAssignVariables false >"$TMP_DIR/portman.log" 2>&1
) || { cat "$TMP_DIR/portman.log" >&2; die "portman could not generate the collection"; }
# Two things Portman has no setting for: the OAuth consent answers with the redirect to
# the client, carrying the code, and that request must not follow it, so that its
# Location is kept for the token request after it; and the optional fields of a form
# body that the config gives values to (the code, the verifier...) must be sent.
node -e '
const fs = require("fs"), file = process.argv[1], c = JSON.parse(fs.readFileSync(file));
const walk = (items) => items.forEach((it) => {
	if (it.item) { return walk(it.item); }
	const path = (it.request.url.path || []).join("/");
	if (it.request.method === "POST" && path === "oauth/consent") { it.protocolProfileBehavior = { followRedirects: false }; }
	const body = it.request.body;
	if (body && body.mode === "urlencoded") { body.urlencoded.forEach((f) => { if (f.value !== "") { f.disabled = false; } }); }
});
walk(c.item);
fs.writeFileSync(file, JSON.stringify(c, null, 2));' "$COLLECTION"

log "go build -o bin/taskmanager ./cmd/taskmanager"
go build -o bin/taskmanager ./cmd/taskmanager
start_throwaway_postgres "$TMP_DIR/pg" taskmanager
log "bin/taskmanager migrate"
bin/taskmanager migrate >&2

ADMIN_USERNAME=contract-admin
ADMIN_PASSWORD="Admin-$(random_hex 12)"
log "bin/taskmanager createuser --username $ADMIN_USERNAME --admin"
printf '%s\n' "$ADMIN_PASSWORD" | bin/taskmanager createuser --username "$ADMIN_USERNAME" --admin >&2

# The run makes about 30 requests in a few seconds, 5 of them logins: the default budgets
# would do, but raised ones keep the run about the contract, not about throttling.
start_server "$TMP_DIR" ALLOWED_HOSTS=127.0.0.1,localhost \
	RATE_LIMIT_ANON=1000/minute RATE_LIMIT_USER=1000/minute RATE_LIMIT_LOGIN=1000/minute \
	RATE_LIMIT_REGISTER=100/minute RATE_LIMIT_TOKEN=1000/minute RATE_LIMIT_KEY_CREATE=100/minute

log "newman run the contract tests against $BASE_URL"
status=0
node_modules/.bin/newman run "$COLLECTION" -e api/portman/contract.postman_environment.json \
	--env-var "baseUrl=$BASE_URL" --env-var "adminUsername=$ADMIN_USERNAME" \
	--env-var "adminPassword=$ADMIN_PASSWORD" "$@" || status=$?
if [ "$status" -ne 0 ]; then
	log "newman failed (exit $status); last server log lines:"
	tail -n 40 "$TMP_DIR/server.log" >&2 || true
fi
exit "$status"
