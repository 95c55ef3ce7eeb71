package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/postgres"
	"github.com/acme/taskmanager/internal/task"
)

// listFlag is a flag that may be given several times, or once with commas.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*l = append(*l, x)
		}
	}
	return nil
}

// createClient registers an OAuth client from the command line, as POST
// /api/admin/oauth/clients/ does, and prints its client_id and, once, its
// secret.
func createClient(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("createclient", flag.ContinueOnError)
	name := fs.String("name", "", "the application's name, shown on the consent page (required)")
	public := fs.Bool("public", false, "a public client (native or browser app): no secret, PKCE only")
	var uris, grants, scopes listFlag
	fs.Var(&uris, "redirect-uri", "a redirect URI (repeat for more): https, http://127.0.0.1 or http://[::1] (any port), or an app scheme")
	fs.Var(&grants, "grant", "a grant type (repeat for more): authorization_code, refresh_token, client_credentials (default authorization_code,refresh_token)")
	fs.Var(&scopes, "scope", "a scope the client may ask for (repeat for more): "+strings.Join(task.OAuthScopes, ", ")+" (default tasks:read)")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	*name = strings.TrimSpace(*name)
	if *name == "" || len(*name) > 100 {
		return errors.New("createclient: --name is required (up to 100 characters)")
	}
	if len(grants) == 0 {
		grants = listFlag{task.GrantAuthorizationCode, task.GrantRefreshToken}
	}
	if len(scopes) == 0 {
		scopes = listFlag{task.ScopeTasksRead}
	}
	known := []string{task.GrantAuthorizationCode, task.GrantRefreshToken, task.GrantClientCredentials}
	for _, g := range grants {
		if !slices.Contains(known, g) {
			return fmt.Errorf("createclient: unknown grant %q: use %s", g, strings.Join(known, ", "))
		}
	}
	for _, s := range scopes {
		if !slices.Contains(task.OAuthScopes, s) {
			return fmt.Errorf("createclient: unknown scope %q: use %s", s, strings.Join(task.OAuthScopes, ", "))
		}
	}
	if err := task.CheckOAuthClient(uris, grants, !*public); err != nil {
		var msgs []string
		for field, m := range task.ErrorFields(err) {
			msgs = append(msgs, field+": "+strings.Join(m, " "))
		}
		slices.Sort(msgs)
		return errors.New("createclient: " + strings.Join(msgs, "; "))
	}
	cfg, err := loadConfig(getenv, "createclient", stderr)
	if err != nil {
		return err
	}
	db, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	c := &task.OAuthClient{Name: *name, RedirectURIs: slices.Compact(uris), GrantTypes: slices.Compact(grants), Scopes: slices.Compact(scopes)}
	if c.RedirectURIs == nil {
		c.RedirectURIs = []string{}
	}
	secret := auth.NewOAuthClient(c, !*public)
	if err := db.OAuth().CreateClient(ctx, c); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created OAuth client %q (id %s)\nclient_id: %s\n", c.Name, c.ID, c.ClientID)
	if secret != "" {
		fmt.Fprintf(stdout, "client_secret: %s\n(shown this once: only its hash is stored)\n", secret)
	}
	return nil
}
