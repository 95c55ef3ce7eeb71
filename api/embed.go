// Package api embeds the OpenAPI description, so the binary serves the
// document its tests check it against.
package api

import _ "embed"

// OpenAPI is api/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
