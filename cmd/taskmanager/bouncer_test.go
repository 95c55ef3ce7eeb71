package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/taskmanager/internal/logtest"
	"github.com/acme/taskmanager/internal/pgtest"
)

// pgbouncerExecMode is the setting docs/operations.md prescribes behind
// PgBouncer in transaction mode; TEST_PGBOUNCER_EXEC_MODE overrides it, to
// see what goes wrong without it.
func pgbouncerExecMode() string {
	if m, ok := os.LookupEnv("TEST_PGBOUNCER_EXEC_MODE"); ok {
		return m
	}
	return "cache_describe"
}

// TestBehindPgBouncer: two server processes whose pools go through a real
// PgBouncer in transaction pooling mode, their revocation listeners
// straight to PostgreSQL (LISTEN_DATABASE_URL), answer 200 concurrent
// requests without a 500, and a logout on one is refused by the other
// within a second; so it is by a third whose listener, misconfigured, goes
// through the pooler too.
func TestBehindPgBouncer(t *testing.T) {
	dsn := pgtest.URL(t)
	pgtest.SetDatabase(t, dsn, "statement_timeout", "2s") // the pooler drops the startup parameter
	pooled := pgtest.Bouncer(t, dsn)
	if mode := pgbouncerExecMode(); mode != "" {
		pooled += "&default_query_exec_mode=" + mode
	}
	env := map[string]string{
		"DATABASE_URL": dsn, "JWT_SIGNING_KEY": strings.Repeat("bouncer!", 8), "RATE_LIMIT_USER": "100000/minute",
		"RATE_LIMIT_REGISTER": "1000/minute", "RATE_LIMIT_LOGIN": "1000/minute",
	}
	var out, errOut logtest.Buffer
	// Migrations take a session lock, which only a direct connection keeps.
	if err := run(context.Background(), []string{"taskmanager", "migrate"}, envFunc(env), nil, &out, &errOut); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	env["DATABASE_URL"] = pooled
	// Misconfigured: its listener goes through the pooler too, where LISTEN
	// cannot work. It must notice, and check revocations in the database.
	c := startProcess(t, env)
	env["LISTEN_DATABASE_URL"] = dsn
	a, b := startProcess(t, env), startProcess(t, env)
	procs := []*process{a, b}

	login := func(name string) string {
		creds := map[string]string{"username": name, "password": "Bouncer-pass-phrase-7"}
		if code, body := a.call(t, "POST", "/api/register/", "", creds); code != 201 {
			t.Fatalf("register = %d %v", code, body)
		}
		code, tok := b.call(t, "POST", "/api/token/", "", creds)
		if code != 200 {
			t.Fatalf("login = %d %v", code, tok)
		}
		return tok["access"].(string)
	}
	var tokens []string
	for i := range 4 {
		tokens = append(tokens, login(fmt.Sprintf("bouncer%d_%s", i, filepath.Base(t.TempDir()))))
	}

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 200}}
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			method, path, body := "GET", "/api/tasks/?limit=5", ""
			switch i % 4 {
			case 0, 1:
				method, path, body = "POST", "/api/tasks/", fmt.Sprintf(`{"title": "Pooled task %d"}`, i)
			case 2:
				path = "/api/tasks/?search=Pooled"
			}
			r, _ := http.NewRequest(method, procs[i%2].base+path, strings.NewReader(body))
			r.Header.Set("Authorization", "Bearer "+tokens[i%len(tokens)])
			if body != "" {
				r.Header.Set("Content-Type", "application/json")
				if i%8 == 0 {
					r.Header.Set("Idempotency-Key", fmt.Sprintf("pooled-%d", i))
				}
			}
			<-start
			code := 0
			if resp, err := client.Do(r); err == nil {
				code = resp.StatusCode
				resp.Body.Close()
			}
			mu.Lock()
			statuses[code]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	t.Logf("200 concurrent requests through PgBouncer: %v", statuses)
	if statuses[200]+statuses[201] != 200 {
		t.Fatalf("statuses = %v, want every request answered 200 or 201", statuses)
	}

	// A logout through one instance reaches the other's listener.
	access := tokens[0]
	if code, _ := b.call(t, "GET", "/api/me/", access, nil); code != 200 {
		t.Fatalf("the other process refuses a fresh token: %d", code)
	}
	if code, _ := a.call(t, "POST", "/api/logout/all/", access, nil); code != 204 {
		t.Fatalf("logout/all = %d", code)
	}
	began := time.Now()
	for _, p := range []*process{b, c} {
		for {
			code, _ := p.call(t, "GET", "/api/me/", access, nil)
			if code == 401 {
				break
			}
			if time.Since(began) > time.Second {
				t.Fatalf("%s still answers %d for a revoked token after 1 s", p.base, code)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Logf("the other instances, one listening through the pooler, refused the logged-out token after %v",
		time.Since(began).Round(time.Millisecond))
}
