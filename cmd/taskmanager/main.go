// Command taskmanager serves the task-manager API and administers its
// database: serve, migrate, createuser, check, version.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/acme/taskmanager/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, config.Getenv(os.LookupEnv), os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "taskmanager:", err)
		os.Exit(exitCode(err))
	}
}
