package main

import (
	"fmt"
	"io"
)

// check validates the configuration as serve would read it, connecting to
// nothing.
func check(getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(getenv, "serve", stderr)
	if err != nil {
		return err
	}
	// Warnings do not stop serve, which logs them; check shows them too.
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "taskmanager: configuration warning:", w)
	}
	fmt.Fprintln(stdout, "configuration OK")
	return nil
}
