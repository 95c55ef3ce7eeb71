package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/task"
)

// createUser creates a user from the command line, the password from stdin.
func createUser(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("createuser", flag.ContinueOnError)
	username := fs.String("username", "", "username (required): up to 150 letters, digits and @/./+/-/_")
	email := fs.String("email", "", "email address")
	isAdmin := fs.Bool("admin", false, "make the user an administrator")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if !task.ValidUsername(*username) {
		return errors.New("createuser: --username is required: up to 150 letters, digits and @/./+/-/_")
	}
	db, err := openDB(ctx, getenv, "createuser", stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	password, err := readPassword(stdin, stderr)
	if err != nil {
		return err
	}
	if problems := auth.CheckPassword(password, *username); len(problems) > 0 {
		return errors.New("createuser: " + strings.Join(problems, " "))
	}
	hash, err := auth.NewHasher(1).Hash(ctx, password)
	if err != nil {
		return err
	}
	u := &task.User{Username: *username, Email: strings.TrimSpace(*email), PasswordHash: hash, IsAdmin: *isAdmin}
	if err := db.Users().CreateUser(ctx, u); err != nil {
		if fields := task.ErrorFields(err); fields != nil {
			return errors.New("createuser: " + strings.Join(fields["username"], " "))
		}
		return err
	}
	fmt.Fprintf(stdout, "created user %s (id %s, admin %t)\n", u.Username, u.ID, u.IsAdmin)
	return nil
}

// readPassword prompts twice on a terminal; from a pipe it reads one line.
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "Password (again): ")
		second, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(first) != string(second) {
			return "", errors.New("createuser: passwords do not match")
		}
		return string(first), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("createuser: no password on stdin")
	}
	return line, nil
}
