package httpapi

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// newTasksEnv is a server whose per-user budget these tests cannot exhaust:
// they make many requests as one user, and throttling has tests of its own.
func newTasksEnv(t testing.TB, env map[string]string) *testEnv {
	t.Helper()
	merged := map[string]string{"RATE_LIMIT_USER": "1000000/second"}
	for k, v := range env {
		merged[k] = v
	}
	return newEnv(t, merged)
}

// inSubtest returns e reporting to the subtest t, so a failed assertion
// stops t instead of calling FailNow on the parent from another goroutine.
// It takes a block of client addresses of its own.
func (e *testEnv) inSubtest(t testing.TB) *testEnv {
	const block = 1 << 12
	v := &testEnv{t: t, srv: e.srv, db: e.db, dsn: e.dsn, cfg: e.cfg, logBuf: e.logBuf}
	v.ip.Store(e.ip.Add(block) - block)
	return v
}

// taskClient is one user talking to the task routes.
type taskClient struct {
	e *testEnv
	u *user
}

func (c taskClient) in(t testing.TB) taskClient { return taskClient{c.e.inSubtest(t), c.u} }

func (c taskClient) do(method, path string, body any, headers map[string]string) *resp {
	c.e.t.Helper()
	return c.e.do(req{method: method, path: path, body: body, auth: c.u.bearer(), headers: headers})
}

// send serves a request built by hand, for what req cannot express: no
// Content-Type at all, or a body of unknown length (ContentLength -1).
func (c taskClient) send(method, path string, body []byte, contentType string, length int64) *resp {
	c.e.t.Helper()
	hr := httptest.NewRequest(method, path, bytes.NewReader(body))
	hr.Header.Set("Authorization", c.u.bearer())
	if contentType != "" {
		hr.Header.Set("Content-Type", contentType)
	}
	hr.ContentLength = length
	hr.RemoteAddr = "192.0.2.1:40000"
	w := httptest.NewRecorder()
	c.e.srv.ServeHTTP(w, hr)
	return &resp{w, c.e.t}
}

// create posts body and returns the new task and its ETag.
func (c taskClient) create(body any) (taskJSON, string) {
	c.e.t.Helper()
	r := c.do(http.MethodPost, "/api/tasks/", body, nil).status(http.StatusCreated)
	return decodeAs[taskJSON](r), r.Header().Get("ETag")
}

// get returns the task and its ETag.
func (c taskClient) get(id uuid.UUID) (taskJSON, string) {
	c.e.t.Helper()
	r := c.do(http.MethodGet, taskPath(id), nil, nil).status(http.StatusOK)
	return decodeAs[taskJSON](r), r.Header().Get("ETag")
}

// list fetches one page; target is a path or an absolute next/previous link.
func (c taskClient) list(target string) pageJSON[taskJSON] {
	c.e.t.Helper()
	return decodeAs[pageJSON[taskJSON]](c.do(http.MethodGet, target, nil, nil).status(http.StatusOK))
}

// walk follows next links from target and returns every page.
func (c taskClient) walk(target string) []pageJSON[taskJSON] {
	c.e.t.Helper()
	var pages []pageJSON[taskJSON]
	for range 50 {
		p := c.list(target)
		pages = append(pages, p)
		if p.Next == nil {
			return pages
		}
		target = *p.Next
	}
	c.e.t.Fatalf("more than 50 pages from %s", target)
	return nil
}

// all is every task the query lists, across pages.
func (c taskClient) all(query string) []taskJSON {
	c.e.t.Helper()
	var out []taskJSON
	for _, p := range c.walk("/api/tasks/?limit=100&" + query) {
		out = append(out, p.Results...)
	}
	return out
}

func taskPath(id uuid.UUID) string { return "/api/tasks/" + id.String() + "/" }

func taskIDs(ts []taskJSON) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func taskTitles(ts []taskJSON) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.Title)
	}
	return out
}

func flatten(pages []pageJSON[taskJSON]) []taskJSON {
	var out []taskJSON
	for _, p := range pages {
		out = append(out, p.Results...)
	}
	return out
}

// sameTask compares every field, timestamps as instants.
func sameTask(a, b taskJSON) bool {
	return a.ID == b.ID && a.Title == b.Title && a.Description == b.Description && a.Completed == b.Completed &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) && a.CreatedBy == b.CreatedBy
}

func withFields(base map[string]any, extra map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

var quotedETag = regexp.MustCompile(`^"[^"]+"$`)

func TestTaskCRUD(t *testing.T) {
	e := newTasksEnv(t, nil)
	c := taskClient{e, e.newUser()}

	r := c.do(http.MethodPost, "/api/tasks/", map[string]any{"title": "Buy milk", "description": "Two litres"}, nil).
		status(http.StatusCreated)
	raw := decodeAs[map[string]any](r)
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if want := []string{"completed", "created_at", "created_by", "description", "id", "title", "updated_at"}; !slices.Equal(keys, want) {
		t.Fatalf("task keys = %v, want %v", keys, want)
	}
	for _, k := range []string{"created_at", "updated_at"} {
		s, _ := raw[k].(string)
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil || !strings.HasSuffix(s, "Z") {
			t.Fatalf("%s = %q, want RFC 3339 in UTC", k, s)
		}
	}
	created := decodeAs[taskJSON](r)
	if created.Title != "Buy milk" || created.Description != "Two litres" {
		t.Fatalf("task = %+v, want the title and description sent", created)
	}
	if created.Completed {
		t.Fatalf("completed = true, want the default false")
	}
	if created.CreatedBy.String() != c.u.id {
		t.Fatalf("created_by = %s, want the caller %s", created.CreatedBy, c.u.id)
	}
	loc := r.Header().Get("Location")
	if want := taskPath(created.ID); loc != want {
		t.Fatalf("Location = %q, want %q", loc, want)
	}
	etagCreated := r.Header().Get("ETag")
	if !quotedETag.MatchString(etagCreated) {
		t.Fatalf("ETag of 201 = %q, want a quoted tag", etagCreated)
	}

	r = c.do(http.MethodGet, loc, nil, nil).status(http.StatusOK)
	if got := decodeAs[taskJSON](r); !sameTask(got, created) {
		t.Fatalf("GET Location = %+v, want %+v", got, created)
	}
	etag1 := r.Header().Get("ETag")
	if !quotedETag.MatchString(etag1) || etag1 != etagCreated {
		t.Fatalf("ETag of GET = %q, want the quoted tag of the 201 %q", etag1, etagCreated)
	}

	r = c.do(http.MethodPut, loc, map[string]any{"title": "Buy oat milk", "description": "Oat, not cow", "completed": true}, nil).
		status(http.StatusOK)
	put := decodeAs[taskJSON](r)
	if put.ID != created.ID || put.Title != "Buy oat milk" || put.Description != "Oat, not cow" || !put.Completed {
		t.Fatalf("PUT = %+v, want every field replaced", put)
	}
	if !put.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("created_at after PUT = %v, want %v", put.CreatedAt, created.CreatedAt)
	}
	if put.UpdatedAt.Before(created.UpdatedAt) || put.CreatedBy != created.CreatedBy {
		t.Fatalf("PUT = %+v: updated_at went backwards or owner changed", put)
	}
	etag2 := r.Header().Get("ETag")
	if !quotedETag.MatchString(etag2) || etag2 == etag1 {
		t.Fatalf("ETag after PUT = %q, want a new quoted tag (was %q)", etag2, etag1)
	}

	r = c.do(http.MethodPatch, loc, map[string]any{"completed": false}, nil).status(http.StatusOK)
	patched := decodeAs[taskJSON](r)
	if patched.Completed || patched.Title != put.Title || patched.Description != put.Description {
		t.Fatalf("PATCH {completed:false} = %+v, want only completed changed from %+v", patched, put)
	}
	etag3 := r.Header().Get("ETag")
	if etag3 == etag2 || etag3 == etag1 {
		t.Fatalf("ETag after PATCH = %q, want a new tag (had %q, %q)", etag3, etag1, etag2)
	}

	got, etag := c.get(created.ID)
	if !sameTask(got, patched) {
		t.Fatalf("GET after PATCH = %+v, want %+v", got, patched)
	}
	if etag != etag3 {
		t.Fatalf("ETag of GET = %q, want the PATCH's %q", etag, etag3)
	}
	if ids := taskIDs(c.all("")); !slices.Equal(ids, []uuid.UUID{created.ID}) {
		t.Fatalf("list = %v, want the one task", ids)
	}

	r = c.do(http.MethodDelete, loc, nil, nil).status(http.StatusNoContent)
	if r.Body.Len() != 0 {
		t.Fatalf("204 body = %q, want none", r.Body.String())
	}
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		var body any
		if method == http.MethodPut || method == http.MethodPatch {
			body = map[string]any{"title": "Back from the dead"}
		}
		c.do(method, loc, body, nil).errorCode(http.StatusNotFound, "not_found")
	}
	if n := len(c.all("")); n != 0 {
		t.Fatalf("list after DELETE has %d tasks, want 0", n)
	}
}

func TestTaskOfAnotherUserIs404(t *testing.T) {
	e := newTasksEnv(t, nil)
	owner, other := taskClient{e, e.newUser()}, taskClient{e, e.newUser()}
	created, etag := owner.create(map[string]any{"title": "Private plans", "description": "mine"})
	path := taskPath(created.ID)
	missing := other.do(http.MethodGet, taskPath(uuid.New()), nil, nil).errorCode(http.StatusNotFound, "not_found")

	tests := []struct {
		name, method string
		body         any
		headers      map[string]string
	}{
		{"GET", http.MethodGet, nil, nil},
		{"GET with the owner's ETag in If-None-Match", http.MethodGet, nil, map[string]string{"If-None-Match": etag}},
		{"PUT", http.MethodPut, map[string]any{"title": "Hijacked", "description": "", "completed": true}, nil},
		{"PATCH", http.MethodPatch, map[string]any{"title": "Hijacked"}, nil},
		{"PATCH with the owner's ETag", http.MethodPatch, map[string]any{"completed": true}, map[string]string{"If-Match": etag}},
		{"PATCH with a stale ETag", http.MethodPatch, map[string]any{"completed": true}, map[string]string{"If-Match": `"999"`}},
		{"DELETE", http.MethodDelete, nil, nil},
		{"DELETE with the owner's ETag", http.MethodDelete, nil, map[string]string{"If-Match": etag}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := other.in(t).do(tt.method, path, tt.body, tt.headers).errorCode(http.StatusNotFound, "not_found")
			if got.Error.Message != missing.Error.Message {
				t.Fatalf("message = %q, want the missing task's %q", got.Error.Message, missing.Error.Message)
			}
		})
	}

	after, afterETag := owner.get(created.ID)
	if !sameTask(after, created) || afterETag != etag {
		t.Fatalf("owner's task after the other user's attempts = %+v (ETag %s), want %+v (ETag %s)", after, afterETag, created, etag)
	}
	if ids := taskIDs(other.all("")); len(ids) != 0 {
		t.Fatalf("other user's list = %v, want empty", ids)
	}
	if ids := taskIDs(other.all("search=Private")); len(ids) != 0 {
		t.Fatalf("other user's search = %v, want empty", ids)
	}
	if ids := taskIDs(owner.all("")); !slices.Equal(ids, []uuid.UUID{created.ID}) {
		t.Fatalf("owner's list = %v, want [%s]", ids, created.ID)
	}
}

func TestTaskReadOnlyFieldsIgnored(t *testing.T) {
	e := newTasksEnv(t, nil)
	owner, other := taskClient{e, e.newUser()}, taskClient{e, e.newUser()}
	fakeID := uuid.New()
	readOnly := map[string]any{"id": fakeID, "created_by": other.u.id,
		"created_at": "2000-01-01T00:00:00Z", "updated_at": "2000-01-01T00:00:00Z"}

	created, _ := owner.create(withFields(readOnly, map[string]any{"title": "Owned task"}))
	if created.CreatedBy.String() != owner.u.id {
		t.Fatalf("created_by = %s, want the caller %s, not the body's %s", created.CreatedBy, owner.u.id, other.u.id)
	}
	if created.ID == fakeID {
		t.Fatalf("id = %s: the client-supplied id was applied", created.ID)
	}
	if created.CreatedAt.Year() == 2000 || created.UpdatedAt.Year() == 2000 {
		t.Fatalf("timestamps = %v, %v: the client-supplied ones were applied", created.CreatedAt, created.UpdatedAt)
	}
	owner.do(http.MethodGet, taskPath(fakeID), nil, nil).errorCode(http.StatusNotFound, "not_found")

	tests := []struct {
		name, method string
		body         map[string]any
	}{
		{"PATCH", http.MethodPatch, map[string]any{"title": "Owned task renamed"}},
		{"PUT", http.MethodPut, map[string]any{"title": "Owned task replaced", "description": "", "completed": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeAs[taskJSON](owner.in(t).do(tt.method, taskPath(created.ID), withFields(readOnly, tt.body), nil).
				status(http.StatusOK))
			if got.Title != tt.body["title"] {
				t.Fatalf("title = %q, want %q applied", got.Title, tt.body["title"])
			}
			if got.ID != created.ID || got.CreatedBy != created.CreatedBy {
				t.Fatalf("id, created_by = %s, %s, want %s, %s", got.ID, got.CreatedBy, created.ID, created.CreatedBy)
			}
			if !got.CreatedAt.Equal(created.CreatedAt) || got.UpdatedAt.Year() == 2000 {
				t.Fatalf("timestamps = %v, %v: the client-supplied ones were applied", got.CreatedAt, got.UpdatedAt)
			}
		})
	}

	other.do(http.MethodGet, taskPath(created.ID), nil, nil).errorCode(http.StatusNotFound, "not_found")
	if ids := taskIDs(other.all("")); len(ids) != 0 {
		t.Fatalf("other user's list = %v, want empty: the task leaked through created_by", ids)
	}
	if got, _ := owner.get(created.ID); got.CreatedBy.String() != owner.u.id {
		t.Fatalf("stored created_by = %s, want %s", got.CreatedBy, owner.u.id)
	}
}

func TestTaskMalformedIDIs404(t *testing.T) {
	e := newTasksEnv(t, nil)
	c := taskClient{e, e.newUser()}
	existing, etag := c.create(map[string]any{"title": "Existing task"})

	ids := map[string]string{
		"word":            "not-a-uuid",
		"number":          "12345",
		"uuid with a g":   "00000000-0000-0000-0000-00000000000g",
		"300 characters":  strings.Repeat("a", 300),
		"SQL injection":   url.PathEscape("1' OR '1'='1"),
		"existing id + x": existing.ID.String() + "x",
		"existing id - 1": existing.ID.String()[:35],
		"percent-encoded": "%00",
		"unicode":         url.PathEscape("задача"),
	}
	bodies := map[string]any{
		http.MethodGet:    nil,
		http.MethodPut:    map[string]any{"title": "Valid title", "description": "", "completed": false},
		http.MethodPatch:  map[string]any{"title": "Valid title"},
		http.MethodDelete: nil,
	}
	for name, id := range ids {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			t.Run(method+" "+name, func(t *testing.T) {
				c.in(t).do(method, "/api/tasks/"+id+"/", bodies[method], nil).errorCode(http.StatusNotFound, "not_found")
			})
		}
	}

	got, gotETag := c.get(existing.ID)
	if !sameTask(got, existing) || gotETag != etag {
		t.Fatalf("task after requests to malformed ids = %+v, want %+v unchanged", got, existing)
	}
	if n := len(c.all("")); n != 1 {
		t.Fatalf("list has %d tasks, want 1", n)
	}
}

func TestTaskCreateValidation(t *testing.T) {
	e := newTasksEnv(t, nil)
	c := taskClient{e, e.newUser()}

	bad := []struct {
		name  string
		body  any
		field string
	}{
		{"title of 2 characters", map[string]any{"title": "ab"}, "title"},
		{"title with punctuation", map[string]any{"title": "bad!title"}, "title"},
		{"title of 201 characters", map[string]any{"title": strings.Repeat("a", 201)}, "title"},
		{"title of 201 two-byte characters", map[string]any{"title": strings.Repeat("é", 201)}, "title"},
		{"missing title", map[string]any{}, "title"},
		{"missing title with a description", map[string]any{"description": "no title here"}, "title"},
		{"title a number", `{"title": 123}`, "title"},
		{"title null", `{"title": null}`, "title"},
		{"completed a string", map[string]any{"title": "Valid title", "completed": "yes"}, "completed"},
		{"completed null", `{"title": "Valid title", "completed": null}`, "completed"},
		{"description a number", map[string]any{"title": "Valid title", "description": 42}, "description"},
		{"unknown field", map[string]any{"title": "Valid title", "priority": 1}, "priority"},
		{"description of 10,001 characters", map[string]any{"title": "Valid title", "description": strings.Repeat("x", 10001)}, "description"},
		{"description with a NUL character", `{"title": "Valid title", "description": "a\u0000b"}`, "description"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			taskClient{e.inSubtest(t), c.u}.do(http.MethodPost, "/api/tasks/", tt.body, nil).fieldError(tt.field)
		})
	}
	if ts := c.all(""); len(ts) != 0 {
		t.Fatalf("rejected requests stored %v, want nothing", taskTitles(ts))
	}

	good := []struct {
		name string
		body map[string]any
	}{
		{"title of 3 characters", map[string]any{"title": "abc"}},
		{"title of 200 characters", map[string]any{"title": strings.Repeat("a", 200)}},
		{"title of 200 two-byte characters", map[string]any{"title": strings.Repeat("é", 200)}},
		{"description of 10,000 characters", map[string]any{"title": "Plan the sprint 42", "description": strings.Repeat("x", 10000), "completed": true}},
		{"description of 10,000 two-byte characters", map[string]any{"title": "Long French notes", "description": strings.Repeat("é", 10000)}},
		{"accented Latin title", map[string]any{"title": "Tâche numéro 1"}},
		{"Cyrillic title", map[string]any{"title": "Задача 42"}},
		{"Chinese title", map[string]any{"title": "任务清单"}},
		{"Arabic title with Arabic-Indic digits", map[string]any{"title": "مهمة ٤٢"}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			sc := c.in(t)
			created, _ := sc.create(tt.body)
			desc, _ := tt.body["description"].(string)
			done, _ := tt.body["completed"].(bool)
			if created.Title != tt.body["title"] || created.Description != desc || created.Completed != done {
				t.Fatalf("created %q/%d chars/%v, want the body's values", created.Title, len(created.Description), created.Completed)
			}
			if got, _ := sc.get(created.ID); got.Title != created.Title || got.Description != desc {
				t.Fatalf("stored title = %q, want %q", got.Title, created.Title)
			}
		})
	}
	if n := len(c.all("")); n != len(good) {
		t.Fatalf("list has %d tasks, want %d", n, len(good))
	}
}

func TestTaskUpdateValidation(t *testing.T) {
	e := newTasksEnv(t, nil)
	c := taskClient{e, e.newUser()}
	created, _ := c.create(map[string]any{"title": "Original title", "description": "Original", "completed": false})
	before, etag := c.get(created.ID)

	tests := []struct {
		name, method string
		body         any
		field        string
	}{
		{"PATCH title null", http.MethodPatch, `{"title": null}`, "title"},
		{"PATCH title of 2 characters", http.MethodPatch, map[string]any{"title": "ab"}, "title"},
		{"PATCH title with punctuation", http.MethodPatch, map[string]any{"title": "bad!title"}, "title"},
		{"PATCH description null", http.MethodPatch, `{"description": null}`, "description"},
		{"PATCH completed null", http.MethodPatch, `{"completed": null}`, "completed"},
		{"PATCH completed a string", http.MethodPatch, map[string]any{"completed": "yes"}, "completed"},
		{"PATCH valid title with a bad completed", http.MethodPatch, map[string]any{"title": "Changed title", "completed": "yes"}, "completed"},
		{"PATCH unknown field", http.MethodPatch, map[string]any{"priority": 1}, "priority"},
		{"PATCH description with a NUL character", http.MethodPatch, `{"description": "\u0000"}`, "description"},
		{"PUT title with punctuation", http.MethodPut, map[string]any{"title": "bad!title", "description": "", "completed": true}, "title"},
		{"PUT without title", http.MethodPut, map[string]any{"description": "Changed", "completed": true}, "title"},
		{"PUT description of 10,001 characters", http.MethodPut, map[string]any{"title": "Changed title", "description": strings.Repeat("x", 10001)}, "description"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.in(t).do(tt.method, taskPath(created.ID), tt.body, nil).fieldError(tt.field)
		})
	}

	after, afterETag := c.get(created.ID)
	if !sameTask(after, before) || afterETag != etag {
		t.Fatalf("task after rejected updates = %+v (ETag %s), want %+v (ETag %s)", after, afterETag, before, etag)
	}
}

func TestTaskConditionalRequests(t *testing.T) {
	e := newTasksEnv(t, nil)
	c := taskClient{e, e.newUser()}
	created, _ := c.create(map[string]any{"title": "Concurrent edit"})
	path := taskPath(created.ID)
	_, etag1 := c.get(created.ID)
	ifMatch := func(tag string) map[string]string { return map[string]string{"If-Match": tag} }

	mismatches := []struct{ name, tag string }{
		{"unknown tag", `"certainly-not-the-etag"`},
		{"another version", `"999"`},
		{"weak form of the current tag", "W/" + etag1},
		{"empty tag", `""`},
	}
	for _, tt := range mismatches {
		for _, method := range []string{http.MethodPatch, http.MethodPut, http.MethodDelete} {
			t.Run(method+" "+tt.name, func(t *testing.T) {
				var body any
				if method != http.MethodDelete {
					body = map[string]any{"title": "Lost update", "description": "", "completed": true}
				}
				c.in(t).do(method, path, body, ifMatch(tt.tag)).errorCode(http.StatusPreconditionFailed, "precondition_failed")
			})
		}
	}
	if got, tag := c.get(created.ID); !sameTask(got, created) || tag != etag1 {
		t.Fatalf("task after 412s = %+v (ETag %s), want %+v (ETag %s)", got, tag, created, etag1)
	}

	r := c.do(http.MethodPatch, path, map[string]any{"title": "First writer"}, ifMatch(etag1)).status(http.StatusOK)
	if got := decodeAs[taskJSON](r); got.Title != "First writer" {
		t.Fatalf("title after PATCH with the current ETag = %q, want %q", got.Title, "First writer")
	}
	etag2 := r.Header().Get("ETag")
	if etag2 == etag1 {
		t.Fatalf("ETag after a write = %q, want a new one", etag2)
	}

	c.do(http.MethodPut, path, map[string]any{"title": "Second writer", "description": "", "completed": false}, ifMatch(etag1)).
		errorCode(http.StatusPreconditionFailed, "precondition_failed")
	c.do(http.MethodDelete, path, nil, ifMatch(etag1)).errorCode(http.StatusPreconditionFailed, "precondition_failed")
	if got, tag := c.get(created.ID); got.Title != "First writer" || tag != etag2 {
		t.Fatalf("task after writes with a stale ETag = %q (ETag %s), want %q (ETag %s)", got.Title, tag, "First writer", etag2)
	}

	r = c.do(http.MethodPut, path, map[string]any{"title": "Second writer", "description": "", "completed": false},
		ifMatch(`"999", `+etag2)).status(http.StatusOK)
	if got := decodeAs[taskJSON](r); got.Title != "Second writer" {
		t.Fatalf("title after PUT with a list naming the current ETag = %q, want %q", got.Title, "Second writer")
	}
	etag3 := r.Header().Get("ETag")

	r = c.do(http.MethodPatch, path, map[string]any{"completed": true}, ifMatch("*")).status(http.StatusOK)
	if got := decodeAs[taskJSON](r); !got.Completed {
		t.Fatalf("If-Match: * on an existing task did not apply")
	}
	etag4 := r.Header().Get("ETag")
	if etag4 == etag3 {
		t.Fatalf("ETag after a write = %q, want a new one", etag4)
	}

	t.Run("If-None-Match", func(t *testing.T) {
		sc := c.in(t)
		r := sc.do(http.MethodGet, path, nil, map[string]string{"If-None-Match": etag4}).status(http.StatusNotModified)
		if r.Body.Len() != 0 {
			t.Fatalf("304 body = %q, want none", r.Body.String())
		}
		if got := r.Header().Get("ETag"); got != etag4 {
			t.Fatalf("ETag of 304 = %q, want %q", got, etag4)
		}
		r = sc.do(http.MethodGet, path, nil, map[string]string{"If-None-Match": etag1}).status(http.StatusOK)
		if got := decodeAs[taskJSON](r); got.Title != "Second writer" {
			t.Fatalf("GET with a stale If-None-Match = %q, want the current task", got.Title)
		}
	})

	c.do(http.MethodDelete, path, nil, ifMatch(etag4)).status(http.StatusNoContent)
	c.do(http.MethodGet, path, nil, nil).errorCode(http.StatusNotFound, "not_found")
	// A conditional write to a task that is gone is 404, not 412.
	c.do(http.MethodPatch, path, map[string]any{"completed": false}, ifMatch(etag4)).errorCode(http.StatusNotFound, "not_found")
	c.do(http.MethodDelete, path, nil, ifMatch(etag4)).errorCode(http.StatusNotFound, "not_found")
}

func TestTaskListPagination(t *testing.T) {
	e := newTasksEnv(t, nil)
	c := taskClient{e, e.newUser()}
	var created []uuid.UUID
	for i := 1; i <= 25; i++ {
		tk, _ := c.create(map[string]any{"title": fmt.Sprintf("Page task %02d", i)})
		created = append(created, tk.ID)
	}
	newestFirst := slices.Clone(created)
	slices.Reverse(newestFirst)

	pages := c.walk("/api/tasks/?limit=10")
	var sizes []int
	for _, p := range pages {
		sizes = append(sizes, len(p.Results))
	}
	if !slices.Equal(sizes, []int{10, 10, 5}) {
		t.Fatalf("page sizes = %v, want [10 10 5]", sizes)
	}
	if pages[0].Previous != nil {
		t.Fatalf("first page's previous = %q, want null", *pages[0].Previous)
	}
	if pages[1].Previous == nil || pages[2].Previous == nil {
		t.Fatalf("pages 2 and 3 must link to their previous page")
	}
	if got := taskIDs(flatten(pages)); !slices.Equal(got, newestFirst) {
		t.Fatalf("walk = %v, want every task once, newest first %v", got, newestFirst)
	}

	back2 := c.list(*pages[2].Previous)
	if got, want := taskIDs(back2.Results), taskIDs(pages[1].Results); !slices.Equal(got, want) {
		t.Fatalf("previous of page 3 = %v, want page 2 %v", got, want)
	}
	if back2.Next == nil || back2.Previous == nil {
		t.Fatalf("page 2 reached backwards must link both ways: next %v, previous %v", back2.Next, back2.Previous)
	}
	if got, want := taskIDs(c.list(*back2.Next).Results), taskIDs(pages[2].Results); !slices.Equal(got, want) {
		t.Fatalf("next of page 2 reached backwards = %v, want page 3 %v", got, want)
	}
	back1 := c.list(*back2.Previous)
	if got, want := taskIDs(back1.Results), taskIDs(pages[0].Results); !slices.Equal(got, want) {
		t.Fatalf("previous of page 2 = %v, want page 1 %v", got, want)
	}
	if back1.Previous != nil || back1.Next == nil {
		t.Fatalf("page 1 reached backwards: previous %v, next %v, want null and a link", back1.Previous, back1.Next)
	}

	def := c.list("/api/tasks/")
	if len(def.Results) != 20 || def.Next == nil || def.Previous != nil {
		t.Fatalf("default page: %d results, next %v, previous %v; want 20, a link, null", len(def.Results), def.Next, def.Previous)
	}
	one := c.list("/api/tasks/?limit=100")
	if len(one.Results) != 25 || one.Next != nil || one.Previous != nil {
		t.Fatalf("limit=100: %d results, next %v, previous %v; want 25, null, null", len(one.Results), one.Next, one.Previous)
	}

	badParams := []struct{ name, query, field string }{
		{"limit 0", "limit=0", "limit"},
		{"limit 101", "limit=101", "limit"},
		{"limit negative", "limit=-1", "limit"},
		{"limit not a number", "limit=abc", "limit"},
		{"limit a fraction", "limit=1.5", "limit"},
		{"ordering bogus", "ordering=bogus", "ordering"},
		{"ordering by a column not offered", "ordering=id", "ordering"},
		{"completed not a boolean", "completed=maybe", "completed"},
		{"search over 200 characters", "search=" + strings.Repeat("a", 201), "search"},
		{"search under 3 characters", "search=ab", "search"},
		{"search with a NUL character", "search=%00", "search"},
	}
	for _, tt := range badParams {
		t.Run(tt.name, func(t *testing.T) {
			c.in(t).do(http.MethodGet, "/api/tasks/?"+tt.query, nil, nil).fieldError(tt.field)
		})
	}

	cursorOf := func(link *string) string {
		t.Helper()
		if link == nil {
			t.Fatalf("want a link, got null")
		}
		u, err := url.Parse(*link)
		if err != nil {
			t.Fatalf("link %q: %v", *link, err)
		}
		return u.Query().Get("cursor")
	}
	titleCursor := cursorOf(c.list("/api/tasks/?ordering=title&limit=2").Next)
	createdCursor := cursorOf(pages[0].Next)
	forged := func(js string) string { return base64.RawURLEncoding.EncodeToString([]byte(js)) }
	badCursors := []struct{ name, query string }{
		{"garbage", "cursor=garbage-cursor"},
		{"not base64", "cursor=" + url.QueryEscape("%%%")},
		{"base64 of no JSON", "cursor=" + forged("not json")},
		{"made for title used with -created_at", "ordering=-created_at&cursor=" + titleCursor},
		{"made for title used with -title", "ordering=-title&cursor=" + titleCursor},
		{"made for -created_at used with created_at", "ordering=created_at&cursor=" + createdCursor},
		{"made for -created_at used with title", "ordering=title&cursor=" + createdCursor},
		{"forged with a key that is no time", "cursor=" + forged(`{"o":"-created_at","k":"yesterday","i":"`+created[0].String()+`"}`)},
		{"forged without an id", "cursor=" + forged(`{"o":"-created_at","k":"2024-01-01T00:00:00Z"}`)},
		{"forged with a NUL in a title key", "ordering=title&cursor=" + forged(`{"o":"title","k":"a\u0000","i":"`+created[0].String()+`"}`)},
	}
	for _, tt := range badCursors {
		t.Run("cursor "+tt.name, func(t *testing.T) {
			c.in(t).do(http.MethodGet, "/api/tasks/?"+tt.query, nil, nil).errorCode(http.StatusBadRequest, "bad_request")
		})
	}
}

func TestTaskListOrderingFilterSearch(t *testing.T) {
	e := newTasksEnv(t, nil)
	c := taskClient{e, e.newUser()}
	spec := []struct {
		title, description string
		completed          bool
	}{
		{"Kiwi zebra", "", true},
		{"Apple", "", false},
		{"Mango zebra", "", false},
		{"Banana", "Look out for the ZEBRA crossing", true},
		{"Duplicate", "", false},
		{"Cherry", "50% off", false},
		{"Grape zebra", "", true},
		{"Duplicate", "", true},
		{"Lemon", "", false},
		{"Fig", "", true},
		{"Duplicate", "", false},
		{"Honeydew", "under_score", false},
	}
	var tasks []taskJSON
	for _, s := range spec {
		tk, _ := c.create(map[string]any{"title": s.title, "description": s.description, "completed": s.completed})
		tasks = append(tasks, tk)
	}
	creation := taskIDs(tasks)
	newestFirst := slices.Clone(creation)
	slices.Reverse(newestFirst)
	byTitle := taskTitles(tasks)
	sort.Strings(byTitle)
	byTitleDesc := slices.Clone(byTitle)
	slices.Reverse(byTitleDesc)

	orderings := []struct {
		name, query string
		ids         []uuid.UUID // the exact order, when the ordering has no ties
		titles      []string
	}{
		{"created_at", "ordering=created_at", creation, nil},
		{"-created_at", "ordering=-created_at", newestFirst, nil},
		{"default", "", newestFirst, nil},
		{"title", "ordering=title", nil, byTitle},
		{"-title", "ordering=-title", nil, byTitleDesc},
	}
	for _, tt := range orderings {
		for _, limit := range []int{2, 5, 100} {
			t.Run(fmt.Sprintf("%s limit %d", tt.name, limit), func(t *testing.T) {
				sc := c.in(t)
				pages := sc.walk(fmt.Sprintf("/api/tasks/?limit=%d&%s", limit, tt.query))
				got := flatten(pages)
				if tt.ids != nil && !slices.Equal(taskIDs(got), tt.ids) {
					t.Fatalf("ids = %v, want %v", taskIDs(got), tt.ids)
				}
				if tt.titles != nil && !slices.Equal(taskTitles(got), tt.titles) {
					t.Fatalf("titles = %v, want %v", taskTitles(got), tt.titles)
				}
				ids := taskIDs(got)
				slices.SortFunc(ids, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
				want := slices.Clone(creation)
				slices.SortFunc(want, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
				if !slices.Equal(ids, want) {
					t.Fatalf("walk listed %d tasks (%d distinct of 12), want each of the 12 once", len(got), len(slices.Compact(ids)))
				}

				// Walking back from the last page yields the same pages.
				var back [][]uuid.UUID
				p := pages[len(pages)-1]
				for p.Previous != nil && len(back) < 50 {
					p = sc.list(*p.Previous)
					back = append(back, taskIDs(p.Results))
				}
				slices.Reverse(back)
				for i, ids := range back {
					if want := taskIDs(pages[i].Results); !slices.Equal(ids, want) {
						t.Fatalf("page %d walked backwards = %v, want %v", i+1, ids, want)
					}
				}
				if len(back) != len(pages)-1 {
					t.Fatalf("walking back gave %d pages, want %d", len(back), len(pages)-1)
				}
			})
		}
	}

	match := func(pred func(i int) bool) []uuid.UUID {
		var out []uuid.UUID
		for i := range spec {
			if pred(i) {
				out = append(out, tasks[i].ID)
			}
		}
		return out
	}
	zebra := func(i int) bool {
		return strings.Contains(strings.ToLower(spec[i].title+" "+spec[i].description), "zebra")
	}
	filters := []struct {
		name, query string
		want        []uuid.UUID
	}{
		{"completed=true", "completed=true", match(func(i int) bool { return spec[i].completed })},
		{"completed=false", "completed=false", match(func(i int) bool { return !spec[i].completed })},
		{"search in title and description", "search=zebra", match(zebra)},
		{"search ignores case", "search=ZeBrA", match(zebra)},
		{"search and completed=true", "search=zebra&completed=true", match(func(i int) bool { return zebra(i) && spec[i].completed })},
		{"search and completed=false", "search=zebra&completed=false", match(func(i int) bool { return zebra(i) && !spec[i].completed })},
		{"search for % is literal", "search=" + url.QueryEscape("50%"), match(func(i int) bool { return spec[i].title == "Cherry" })},
		{"search for _ is literal", "search=r_s", match(func(i int) bool { return spec[i].title == "Honeydew" })},
		{"search without a match", "search=nothing+matches", nil},
		{"search with ordering", "search=duplicate&ordering=title", match(func(i int) bool { return spec[i].title == "Duplicate" })},
	}
	for _, tt := range filters {
		t.Run(tt.name, func(t *testing.T) {
			got := taskIDs(c.in(t).all(tt.query))
			cmp := func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) }
			slices.SortFunc(got, cmp)
			want := slices.Clone(tt.want)
			slices.SortFunc(want, cmp)
			if !slices.Equal(got, want) {
				t.Fatalf("%s listed %v, want %v", tt.query, got, want)
			}
		})
	}

	t.Run("links keep the query", func(t *testing.T) {
		sc := c.in(t)
		query := url.Values{"search": {"ate"}, "ordering": {"title"}, "limit": {"1"}}
		pages := sc.walk("/api/tasks/?" + query.Encode())
		if len(pages) < 3 {
			t.Fatalf("%d pages, want at least 3 to check links both ways", len(pages))
		}
		check := func(what string, link *string) {
			t.Helper()
			if link == nil {
				t.Fatalf("%s = null, want a link", what)
			}
			u, err := url.Parse(*link)
			if err != nil || !u.IsAbs() || u.Host == "" {
				t.Fatalf("%s = %q, want an absolute URL", what, *link)
			}
			if u.Path != "/api/tasks/" {
				t.Fatalf("%s path = %q, want /api/tasks/", what, u.Path)
			}
			got := u.Query()
			for k, v := range query {
				if got.Get(k) != v[0] {
					t.Fatalf("%s %s = %q, want %q kept", what, k, got.Get(k), v[0])
				}
			}
			if got.Get("cursor") == "" {
				t.Fatalf("%s has no cursor", what)
			}
		}
		check("next of page 1", pages[0].Next)
		check("previous of page 2", pages[1].Previous)
		check("next of page 2", pages[1].Next)
		var titles []string
		for _, tk := range flatten(pages) {
			if !strings.Contains(strings.ToLower(tk.Title+tk.Description), "ate") {
				t.Fatalf("following links listed %+v, which the query excludes", tk)
			}
			titles = append(titles, tk.Title)
		}
		if !sort.StringsAreSorted(titles) {
			t.Fatalf("following links lost the ordering: %v", titles)
		}
		if want := len(match(func(i int) bool {
			return strings.Contains(strings.ToLower(spec[i].title+spec[i].description), "ate")
		})); len(titles) != want {
			t.Fatalf("following links listed %d tasks, want %d", len(titles), want)
		}
	})
}

func TestTaskBodyMediaType(t *testing.T) {
	e := newTasksEnv(t, nil)
	c := taskClient{e, e.newUser()}
	target, _ := c.create(map[string]any{"title": "Media target"})

	tests := []struct {
		name, method, path, contentType string
		status                          int
	}{
		{"POST text/plain", http.MethodPost, "/api/tasks/", "text/plain", http.StatusUnsupportedMediaType},
		{"POST form", http.MethodPost, "/api/tasks/", "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"POST multipart", http.MethodPost, "/api/tasks/", "multipart/form-data; boundary=x", http.StatusUnsupportedMediaType},
		{"POST no Content-Type", http.MethodPost, "/api/tasks/", "", http.StatusUnsupportedMediaType},
		{"PUT text/plain", http.MethodPut, taskPath(target.ID), "text/plain", http.StatusUnsupportedMediaType},
		{"PATCH no Content-Type", http.MethodPatch, taskPath(target.ID), "", http.StatusUnsupportedMediaType},
		{"POST JSON with charset", http.MethodPost, "/api/tasks/", "application/json; charset=utf-8", http.StatusCreated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(`{"title": "Sent as media type", "completed": true}`)
			r := c.in(t).send(tt.method, tt.path, body, tt.contentType, int64(len(body)))
			if tt.status == http.StatusUnsupportedMediaType {
				r.errorCode(tt.status, "unsupported_media_type")
				return
			}
			r.status(tt.status)
		})
	}

	titles := taskTitles(c.all("ordering=title"))
	if want := []string{"Media target", "Sent as media type"}; !slices.Equal(titles, want) {
		t.Fatalf("titles = %v, want %v: rejected bodies must store nothing", titles, want)
	}
	if got, _ := c.get(target.ID); !sameTask(got, target) {
		t.Fatalf("task after 415s = %+v, want %+v", got, target)
	}
}

func TestTaskBodyTooLarge(t *testing.T) {
	e := newTasksEnv(t, map[string]string{"MAX_BODY_BYTES": "1024"})
	c := taskClient{e, e.newUser()}
	target, _ := c.create(map[string]any{"title": "Small target"})

	big := []byte(`{"title": "Big body", "description": "` + strings.Repeat("a", 2048) + `"}`)
	padded := []byte(`{"title": "Padded body"}` + strings.Repeat(" ", 2048))
	tests := []struct {
		name, method, path string
		body               []byte
		length             int64
	}{
		{"POST of known length", http.MethodPost, "/api/tasks/", big, int64(len(big))},
		{"POST of unknown length", http.MethodPost, "/api/tasks/", big, -1},
		{"POST padded past the limit, unknown length", http.MethodPost, "/api/tasks/", padded, -1},
		{"PATCH of known length", http.MethodPatch, taskPath(target.ID), big, int64(len(big))},
		{"PUT of unknown length", http.MethodPut, taskPath(target.ID), big, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.in(t).send(tt.method, tt.path, tt.body, "application/json", tt.length).
				errorCode(http.StatusRequestEntityTooLarge, "payload_too_large")
		})
	}

	// Just under the limit is fine, so the limit is the configured one.
	fits := []byte(`{"title": "Fits", "description": "` + strings.Repeat("a", 900) + `"}`)
	c.send(http.MethodPost, "/api/tasks/", fits, "application/json", -1).status(http.StatusCreated)

	titles := taskTitles(c.all("ordering=title"))
	if want := []string{"Fits", "Small target"}; !slices.Equal(titles, want) {
		t.Fatalf("titles = %v, want %v: oversized bodies must store nothing", titles, want)
	}
	if got, _ := c.get(target.ID); !sameTask(got, target) {
		t.Fatalf("task after 413s = %+v, want %+v", got, target)
	}
}

func TestTaskMalformedBody(t *testing.T) {
	e := newTasksEnv(t, nil)
	c := taskClient{e, e.newUser()}
	target, etag := c.create(map[string]any{"title": "Malformed target"})
	badRequest := []string{"bad_request", "malformed_json", "validation_failed"}

	tests := []struct {
		name, body string
		code       string // "" accepts any of the 400 codes
	}{
		{"unterminated object", `{bad`, "malformed_json"},
		{"truncated string", `{"title": "Trunc`, "malformed_json"},
		{"second object after the first", `{"title": "Trailing data"} {"title": "Second"}`, "malformed_json"},
		{"garbage after the object", `{"title": "Trailing garbage"} xyz`, "malformed_json"},
		{"JSON array", `[{"title": "In an array"}]`, ""},
		{"JSON string", `"Just a string"`, ""},
		{"JSON number", `42`, ""},
		{"JSON true", `true`, ""},
		{"empty body", ``, ""},
		{"whitespace only", "  \n ", ""},
	}
	for _, tt := range tests {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch} {
			t.Run(method+" "+tt.name, func(t *testing.T) {
				path := "/api/tasks/"
				if method != http.MethodPost {
					path = taskPath(target.ID)
				}
				r := c.in(t).do(method, path, tt.body, nil).status(http.StatusBadRequest)
				got := decodeAs[apiError](r).Error.Code
				if tt.code != "" && got != tt.code || tt.code == "" && !slices.Contains(badRequest, got) {
					t.Fatalf("error code = %q, want %q (one of %v)", got, tt.code, badRequest)
				}
			})
		}
	}
	t.Run("POST null", func(t *testing.T) {
		c.in(t).do(http.MethodPost, "/api/tasks/", `null`, nil).status(http.StatusBadRequest)
	})

	if ids := taskIDs(c.all("")); !slices.Equal(ids, []uuid.UUID{target.ID}) {
		t.Fatalf("list = %v, want only the target: malformed bodies must store nothing", ids)
	}
	if got, tag := c.get(target.ID); !sameTask(got, target) || tag != etag {
		t.Fatalf("task after malformed writes = %+v (ETag %s), want %+v (ETag %s)", got, tag, target, etag)
	}
}

func TestTaskRoutesTrailingSlash(t *testing.T) {
	e := newTasksEnv(t, nil)
	c := taskClient{e, e.newUser()}
	noRedirect := func(r *resp) *resp {
		t.Helper()
		if r.Code >= 300 && r.Code < 400 {
			t.Fatalf("status = %d (Location %q), want no redirect", r.Code, r.Header().Get("Location"))
		}
		return r
	}

	a := decodeAs[taskJSON](noRedirect(c.do(http.MethodPost, "/api/tasks", map[string]any{"title": "No slash post"}, nil)).
		status(http.StatusCreated))
	b := decodeAs[taskJSON](noRedirect(c.do(http.MethodPost, "/api/tasks/", map[string]any{"title": "Slash post"}, nil)).
		status(http.StatusCreated))
	want := []uuid.UUID{b.ID, a.ID}
	for _, path := range []string{"/api/tasks", "/api/tasks/"} {
		page := decodeAs[pageJSON[taskJSON]](noRedirect(c.do(http.MethodGet, path, nil, nil)).status(http.StatusOK))
		if got := taskIDs(page.Results); !slices.Equal(got, want) {
			t.Fatalf("GET %s = %v, want %v", path, got, want)
		}
	}
	one := "/api/tasks/" + a.ID.String()
	for _, path := range []string{one, one + "/"} {
		got := decodeAs[taskJSON](noRedirect(c.do(http.MethodGet, path, nil, nil)).status(http.StatusOK))
		if got.ID != a.ID {
			t.Fatalf("GET %s = %s, want %s", path, got.ID, a.ID)
		}
	}
	noRedirect(c.do(http.MethodPatch, one, map[string]any{"completed": true}, nil)).status(http.StatusOK)
	noRedirect(c.do(http.MethodPut, one, map[string]any{"title": "No slash put", "completed": true}, nil)).status(http.StatusOK)
	noRedirect(c.do(http.MethodDelete, one, nil, nil)).status(http.StatusNoContent)
	c.do(http.MethodGet, one+"/", nil, nil).errorCode(http.StatusNotFound, "not_found")

	item := taskPath(b.ID)
	notAllowed := []struct {
		name, method, path string
		allow, deny        []string
	}{
		{"DELETE the list", http.MethodDelete, "/api/tasks/", []string{"GET", "POST"}, []string{"DELETE", "PUT", "PATCH"}},
		{"DELETE the list without slash", http.MethodDelete, "/api/tasks", []string{"GET", "POST"}, []string{"DELETE", "PUT", "PATCH"}},
		{"PUT the list", http.MethodPut, "/api/tasks/", []string{"GET", "POST"}, []string{"DELETE", "PUT", "PATCH"}},
		{"POST a task", http.MethodPost, item, []string{"GET", "PUT", "PATCH", "DELETE"}, []string{"POST"}},
		{"POST a task without slash", http.MethodPost, strings.TrimSuffix(item, "/"), []string{"GET", "PUT", "PATCH", "DELETE"}, []string{"POST"}},
	}
	for _, tt := range notAllowed {
		t.Run(tt.name, func(t *testing.T) {
			r := c.in(t).do(tt.method, tt.path, map[string]any{"title": "Method target"}, nil)
			r.errorCode(http.StatusMethodNotAllowed, "method_not_allowed")
			allow := map[string]bool{}
			for _, v := range r.Header().Values("Allow") {
				for _, m := range strings.Split(v, ",") {
					allow[strings.ToUpper(strings.TrimSpace(m))] = true
				}
			}
			for _, m := range tt.allow {
				if !allow[m] {
					t.Fatalf("Allow = %v, want %s listed", r.Header().Values("Allow"), m)
				}
			}
			for _, m := range tt.deny {
				if allow[m] {
					t.Fatalf("Allow = %v, must not list %s", r.Header().Values("Allow"), m)
				}
			}
		})
	}
	if ids := taskIDs(c.all("")); !slices.Equal(ids, []uuid.UUID{b.ID}) {
		t.Fatalf("list = %v, want [%s]: a 405 must store nothing", ids, b.ID)
	}
}

func TestTaskRoutesNeedAuthentication(t *testing.T) {
	e := newTasksEnv(t, nil)
	c := taskClient{e, e.newUser()}
	created, etag := c.create(map[string]any{"title": "Guarded task"})
	path := taskPath(created.ID)

	routes := []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/api/tasks/", nil},
		{http.MethodPost, "/api/tasks/", map[string]any{"title": "Anonymous task"}},
		{http.MethodGet, path, nil},
		{http.MethodPut, path, map[string]any{"title": "Anonymous put"}},
		{http.MethodPatch, path, map[string]any{"title": "Anonymous patch"}},
		{http.MethodDelete, path, nil},
	}
	credentials := []struct{ name, header, code string }{
		{"none", "", "not_authenticated"},
		{"garbage bearer", "Bearer not-a-token", "invalid_token"},
		{"unknown scheme", "Basic dXNlcjpwYXNz", "invalid_token"},
	}
	for _, cred := range credentials {
		for _, rt := range routes {
			t.Run(cred.name+" "+rt.method+" "+rt.path, func(t *testing.T) {
				r := e.inSubtest(t).do(req{method: rt.method, path: rt.path, body: rt.body, auth: cred.header})
				r.errorCode(http.StatusUnauthorized, cred.code)
				if got := r.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Fatalf("WWW-Authenticate = %q, want it to start with Bearer", got)
				}
			})
		}
	}

	if got, tag := c.get(created.ID); !sameTask(got, created) || tag != etag {
		t.Fatalf("task after anonymous writes = %+v, want %+v unchanged", got, created)
	}
	if ids := taskIDs(c.all("")); !slices.Equal(ids, []uuid.UUID{created.ID}) {
		t.Fatalf("list = %v, want only %s", ids, created.ID)
	}
}
