#!/usr/bin/env bash
# The TypeScript types of the API in api/client/ (`make client`; the check runs in `make test`).
#
#   scripts/client.sh          regenerate api/client/schema.d.ts from api/openapi.yaml with
#                              openapi-typescript (version pinned in package.json)
#   scripts/client.sh check    fail when the committed api/client/schema.d.ts is not what
#                              api/openapi.yaml generates now, then type-check
#                              api/client/example.ts with tsc --noEmit
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib.sh
LOG_PREFIX="client:"

SPEC=api/openapi.yaml
TYPES=api/client/schema.d.ts

generate() { node_modules/.bin/openapi-typescript "$SPEC" --output "$1" >/dev/null; }

ensure_node_tools openapi-typescript tsc

case ${1:-generate} in
generate)
	log "openapi-typescript $SPEC -> $TYPES"
	generate "$TYPES"
	;;
check)
	make_temp_dir client
	trap 'rm -rf "$TMP_DIR"' EXIT
	log "openapi-typescript $SPEC, compared with $TYPES"
	generate "$TMP_DIR/schema.d.ts"
	if ! cmp -s "$TMP_DIR/schema.d.ts" "$TYPES"; then
		diff -u "$TYPES" "$TMP_DIR/schema.d.ts" | head -n 40 >&2 || true
		die "$TYPES is stale: api/openapi.yaml has changed since it was generated; run \`make client\` and commit $TYPES"
	fi
	log "tsc --noEmit -p api/client (example.ts against $TYPES)"
	node_modules/.bin/tsc -p api/client/tsconfig.json
	;;
*)
	sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
