package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/acme/taskmanager/internal/task"
)

// FuzzDecodeTask feeds arbitrary bodies and media types to the decoder and
// validator of POST and PATCH /api/tasks/. They must never panic, must
// answer only with the contract's 400, 413 and 415 errors, and whatever
// they accept must satisfy the task rules.
func FuzzDecodeTask(f *testing.F) {
	// A small limit keeps inputs short: the fuzzer's minimizer is quadratic
	// in input size. The 10,000-character description rule has its HTTP test.
	const limit = 512
	s := &Server{cfg: testConfig(f, map[string]string{"MAX_BODY_BYTES": fmt.Sprint(limit)})}
	clientCodes := map[string]bool{
		task.EBADREQUEST: true, task.EMALFORMED: true, task.EINVALID: true,
		task.ETOOLARGE: true, task.EMEDIATYPE: true,
	}

	for _, body := range []string{
		`{"title":"Plan the sprint 42","description":"Write the backlog","completed":false}`,
		`{"title":"abc"}`,
		`{"title":"` + strings.Repeat("a", 200) + `"}`,
		`{"title":"` + strings.Repeat("é", 200) + `"}`,
		`{"title":"Задача 42"}`, `{"title":"任务清单"}`, `{"title":"مهمة ٤٢"}`,
		`{"title":"Owned task","id":"00000000-0000-0000-0000-000000000001","created_by":"x","created_at":"2000-01-01T00:00:00Z","updated_at":2000}`,
		`{"title":"ab"}`, `{"title":"bad!title"}`, `{"title":"` + strings.Repeat("a", 201) + `"}`,
		`{}`, `{"description":"no title here"}`, `{"title":123}`, `{"title":null}`,
		`{"title":"Valid title","completed":"yes"}`, `{"title":"Valid title","completed":null}`,
		`{"title":"Valid title","description":42}`, `{"title":"Valid title","priority":1}`,
		`{"title":"Valid title","description":null}`, `{"title":"Valid title","description":"a\u0000b"}`,
		`{bad`, `[]`, `[{"title":"In an array"}]`, `null`, `"Just a string"`, `42`, `true`, ``, `   `,
		`{"title":"Trailing data"} {"title":"Second"}`, `{"title":"Trailing garbage"} xyz`,
		`{"title":{"nested":{"deeper":[1,2,{"x":null}]}}}`, `{"title":"abc","id":{"a":[{"b":{}}]}}`,
		`{"completed":1e999}`, `{"title":123456789012345678901234567890}`, `{"description":-0.0e-400}`,
		"{\"title\":\"\xff\xfe\xfd\"}", "{\"title\":\"abc\",\"description\":\"\xc3\x28\"}", "\xef\xbb\xbf{\"title\":\"abc\"}",
		`{"title":"\ud800abc"}`, `{"title":"a\u0000bc"}`, `{"TITLE":"Upper case key"}`,
		`{"title":null,"title":"abc"}`, `{"title":"abc","title":null}`,
		`{"ti` + "\x00" + `tle":"abc"}`, `{"":"abc"}`, `{"title":"abc",}`,
		strings.Repeat("[", 300), `{"id":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40) + `}`,
		`{"title":"` + strings.Repeat("a", limit-12) + `"}`, // over the limit by one byte
		`{"title":"abc"}` + strings.Repeat(" ", limit),
	} {
		f.Add([]byte(body), "application/json")
	}
	for _, ct := range []string{"", "text/plain", "application/json; charset=utf-8", "application/merge-patch+json",
		"application/x-www-form-urlencoded", "application/json; charset", "APPLICATION/JSON"} {
		f.Add([]byte(`{"title":"Media type"}`), ct)
	}

	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		// Known and unknown (chunked) lengths take different paths to 413.
		for _, tt := range []struct {
			full    bool
			chunked bool
		}{{true, false}, {true, true}, {false, false}, {false, true}} {
			full := tt.full
			r := httptest.NewRequest(http.MethodPost, "/api/tasks/", bytes.NewReader(body))
			r.Header.Set("Content-Type", contentType)
			if tt.chunked {
				r.ContentLength = -1
			}
			req := taskRequest{full: full}
			err := s.decode(httptest.NewRecorder(), r, &req)
			if err == nil {
				checkTaskUpdate(t, req.update(), full)
				continue
			}
			var te *task.Error
			if !errors.As(err, &te) {
				t.Fatalf("error %T %q is not a *task.Error", err, err)
			}
			code := task.ErrorCode(err)
			if !clientCodes[code] {
				t.Fatalf("error code = %q, want one of the 400/413/415 codes", code)
			}
			if code == task.EINVALID && len(te.Fields) == 0 {
				t.Fatalf("validation error %q names no field", te.Message)
			}
			for _, msg := range append([]string{te.Message}, flattenFields(te.Fields)...) {
				if strings.Contains(msg, "json:") || strings.Contains(msg, "reflect") || strings.Contains(msg, "Optional[") {
					t.Fatalf("message %q leaks the decoder's internals", msg)
				}
			}
		}
	})
}

// checkTaskUpdate asserts that an accepted body obeys the task rules.
func checkTaskUpdate(t *testing.T, upd task.TaskUpdate, full bool) {
	t.Helper()
	if full && upd.Title == nil {
		t.Fatalf("a full write was accepted without a title")
	}
	if upd.Title != nil {
		n := utf8.RuneCountInString(*upd.Title)
		if n < 3 || n > 200 || !task.ValidTitle(*upd.Title) {
			t.Fatalf("accepted title %q (%d characters)", *upd.Title, n)
		}
	}
	if d := upd.Description; d != nil {
		if n := utf8.RuneCountInString(*d); n > 10000 {
			t.Fatalf("accepted a description of %d characters", n)
		}
		// PostgreSQL cannot store NUL in text: accepting one would be a 500.
		if strings.ContainsRune(*d, 0) {
			t.Fatalf("accepted a description with a NUL character: %q", *d)
		}
	}
}

func flattenFields(fields map[string][]string) []string {
	var out []string
	for _, msgs := range fields {
		out = append(out, msgs...)
	}
	return out
}

// reusableBody lets a benchmark hand the same bytes to every iteration
// without allocating a new reader.
type reusableBody struct{ *bytes.Reader }

func (reusableBody) Close() error { return nil }

func BenchmarkDecodeValidateTask(b *testing.B) {
	s := &Server{cfg: testConfig(b, nil)}
	body := []byte(`{"title":"Plan the sprint 42","description":"` +
		strings.Repeat("Write the backlog ", 12)[:200] + `","completed":false}`)
	rb := reusableBody{bytes.NewReader(body)}
	r := httptest.NewRequest(http.MethodPost, "/api/tasks/", nil)
	r.Header.Set("Content-Type", "application/json")
	r.ContentLength = int64(len(body))
	w := httptest.NewRecorder()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rb.Reset(body)
		r.Body = rb
		req := taskRequest{full: true}
		if err := s.decode(w, r, &req); err != nil {
			b.Fatalf("decode: %v", err)
		}
		_ = req.update()
	}
}

func BenchmarkListTasks(b *testing.B) {
	e := newEnv(b, map[string]string{"RATE_LIMIT_USER": "1000000/second"})
	u := e.newUser()
	for i := range 200 {
		e.do(req{method: http.MethodPost, path: "/api/tasks/", auth: u.bearer(),
			body: map[string]any{"title": fmt.Sprintf("Benchmark task %03d", i), "description": "Something to list"}}).
			status(http.StatusCreated)
	}
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodGet, "/api/tasks/?limit=20", nil)
		r.Header.Set("Authorization", u.bearer())
		r.RemoteAddr = "192.0.2.20:40000"
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status = %d, want %d; body %s", w.Code, http.StatusOK, w.Body.String())
		}
	}
}
