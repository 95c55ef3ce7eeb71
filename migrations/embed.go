// Package migrations embeds the SQL migrations, so the binary can migrate
// the database it serves without files beside it.
package migrations

import "embed"

// FS holds the numbered goose migrations.
//
//go:embed *.sql
var FS embed.FS
