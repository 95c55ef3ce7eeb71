package main

import (
	"context"
	"fmt"
	"io"
)

// migrate applies the embedded migrations to DATABASE_URL.
func migrate(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	db, err := openDB(ctx, getenv, "migrate", stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}
