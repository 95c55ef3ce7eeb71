package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func (e *testEnv) taskTitles(u *user) []string {
	e.t.Helper()
	page := decodeAs[pageJSON[taskJSON]](e.do(req{method: "GET", path: "/api/tasks/?limit=100", auth: u.bearer()}).status(http.StatusOK))
	var titles []string
	for _, t := range page.Results {
		titles = append(titles, t.Title)
	}
	return titles
}

func withKey(key string) map[string]string { return map[string]string{"Idempotency-Key": key} }

func TestIdempotentCreate(t *testing.T) {
	e := newEnv(t, nil)
	u, other := e.newUser(), e.newUser()
	body := map[string]any{"title": "Created once", "description": "retried"}

	first := e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: body, headers: withKey("k-1")}).status(http.StatusCreated)
	if first.Header().Get("Idempotent-Replayed") != "" {
		t.Fatalf("the first answer says Idempotent-Replayed %q", first.Header().Get("Idempotent-Replayed"))
	}
	again := e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: body, headers: withKey("k-1")}).status(http.StatusCreated)
	if again.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("Idempotent-Replayed = %q, want true", again.Header().Get("Idempotent-Replayed"))
	}
	if again.Body.String() != first.Body.String() {
		t.Fatalf("replayed body %s, want the stored %s", again.Body, first.Body)
	}
	for _, h := range []string{"Location", "ETag"} {
		if again.Header().Get(h) != first.Header().Get(h) || first.Header().Get(h) == "" {
			t.Fatalf("replayed %s = %q, want the stored %q", h, again.Header().Get(h), first.Header().Get(h))
		}
	}

	e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": "Another body"}, headers: withKey("k-1")}).
		errorCode(http.StatusUnprocessableEntity, "idempotency_key_reused")
	// Same key, another user: a request of its own.
	mine := e.do(req{method: "POST", path: "/api/tasks/", auth: other.bearer(), body: body, headers: withKey("k-1")}).status(http.StatusCreated)
	if mine.Header().Get("Idempotent-Replayed") != "" || decodeAs[taskJSON](mine).ID == decodeAs[taskJSON](first).ID {
		t.Fatalf("another user's key replayed the first user's answer: %s", mine.Body)
	}
	// A refused body is not stored: the corrected retry with the key runs.
	e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": "x"}, headers: withKey("k-2")}).fieldError("title")
	e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": "Fixed title"}, headers: withKey("k-2")}).status(http.StatusCreated)

	if got := strings.Join(e.taskTitles(u), ","); got != "Fixed title,Created once" {
		t.Fatalf("tasks = %s, want one of each", got)
	}
}

func TestIdempotencyKeyBounds(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	for _, key := range []string{"", strings.Repeat("k", 256), "caf\u00e9", "tab\there", "nul\x00"} {
		e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": "Refused key"}, headers: withKey(key)}).
			errorCode(http.StatusBadRequest, "bad_request")
	}
	// Two keys on one request: which would count is anyone's guess.
	r := httptest.NewRequest("POST", "/api/tasks/", strings.NewReader(`{"title":"Two keys"}`))
	r.Header.Set("Authorization", u.bearer())
	r.Header.Set("Content-Type", "application/json")
	r.Header["Idempotency-Key"] = []string{"a", "b"}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest {
		t.Fatalf("two Idempotency-Key headers: status = %d, want 400", w.Code)
	}
	if titles := e.taskTitles(u); len(titles) != 0 {
		t.Fatalf("a refused key created %v", titles)
	}
	for _, key := range []string{strings.Repeat("k", 255), "x", " !~"} {
		e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": "Fine key"}, headers: withKey(key)}).
			status(http.StatusCreated)
	}
}

// TestIdempotencyAcrossInstances: 20 concurrent repeats of one key, spread
// over two servers with their own pools on one database, create exactly
// one task; every other answer is its replay or a 409 while it ran.
func TestIdempotencyAcrossInstances(t *testing.T) {
	e1 := newEnv(t, nil)
	e2 := e1.secondInstance(t, nil)
	u := e1.newUser()
	const body = `{"title": "Exactly once"}`

	type answer struct {
		code     int
		replayed bool
		body     string
	}
	answers := make([]answer, 20)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv := e1.srv
			if i%2 == 1 {
				srv = e2.srv
			}
			r := httptest.NewRequest("POST", "/api/tasks/", strings.NewReader(body))
			r.Header.Set("Authorization", u.bearer())
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Idempotency-Key", "retry-storm")
			r.RemoteAddr = "192.0.2.7:1234"
			w := httptest.NewRecorder()
			<-start
			srv.ServeHTTP(w, r)
			answers[i] = answer{w.Code, w.Header().Get("Idempotent-Replayed") == "true", w.Body.String()}
		}()
	}
	close(start)
	wg.Wait()

	ran, replays, conflicts := 0, 0, 0
	var stored string
	for i, a := range answers {
		switch {
		case a.code == http.StatusCreated && !a.replayed:
			ran++
			stored = a.body
		case a.code == http.StatusCreated:
			replays++
		case a.code == http.StatusConflict && strings.Contains(a.body, `"conflict"`):
			conflicts++
		default:
			t.Errorf("answer %d: status %d %s", i, a.code, a.body)
		}
	}
	for i, a := range answers {
		if a.replayed && a.body != stored {
			t.Errorf("answer %d replayed %s, want the stored %s", i, a.body, stored)
		}
	}
	t.Logf("20 repeats: %d ran, %d replayed, %d conflicts", ran, replays, conflicts)
	if ran != 1 {
		t.Fatalf("%d requests ran, want exactly 1", ran)
	}
	if titles := e2.taskTitles(u); len(titles) != 1 {
		t.Fatalf("tasks = %v, want exactly one", titles)
	}
}
