package httpapi

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// trickyStrings are the texts whose JSON differs most between encoders.
var trickyStrings = []string{
	"", "Buy milk", "Café crème", "Задача", "任务清单", "emoji 🚀 ok",
	`quote " and backslash \`, "<script>alert(1)</script> & co", "line\nbreak\ttab\rret",
	"\b\f\x00\x01\x1f\x7f", "\u2028 and \u2029", "bad \xff utf8 \xc3", "\xed\xa0\x80 surrogate",
	"U+FFFD \ufffd itself", "ends in high byte \xe2\x82",
}

// randomString mixes ASCII, escapes, multi-byte runes and broken bytes.
func randomString(r *rand.Rand) string {
	var b []byte
	for range r.IntN(40) {
		switch r.IntN(6) {
		case 0:
			b = append(b, byte(r.IntN(0x80)))
		case 1:
			b = append(b, byte(r.IntN(256)))
		case 2:
			b = utf8.AppendRune(b, rune(r.IntN(0x800)))
		case 3:
			b = utf8.AppendRune(b, rune(0x2000+r.IntN(0x40)))
		case 4:
			b = utf8.AppendRune(b, rune(r.IntN(utf8.MaxRune)))
		default:
			b = append(b, "abc XYZ 123"[r.IntN(11)])
		}
	}
	return string(b)
}

func randomTime(r *rand.Rand) time.Time {
	t := time.Unix(r.Int64N(1<<34), 0).Add(time.Duration(r.IntN(1e9)))
	if r.IntN(4) == 0 {
		t = t.Truncate(time.Second) // no fraction: RFC3339Nano drops it
	}
	return t.UTC()
}

// TestSelfEncodedTasksMatchEncodingJSON: the task list and the task are
// written by hand for speed; the bytes must stay those encoding/json writes,
// so no client can tell.
func TestSelfEncodedTasksMatchEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	next := "https://api.example.com/api/tasks/?cursor=abc&limit=20&search=%3Cb%3E"
	for i := range 2000 {
		var page pageJSON[taskJSON]
		page.Results = []taskJSON{}
		for j := range r.IntN(4) {
			text := func() string {
				if r.IntN(3) == 0 {
					return trickyStrings[(i+j)%len(trickyStrings)]
				}
				return randomString(r)
			}
			page.Results = append(page.Results, taskJSON{ID: uuid.New(), Title: text(), Description: text(),
				Completed: r.IntN(2) == 0, CreatedAt: randomTime(r), UpdatedAt: randomTime(r), CreatedBy: uuid.New()})
		}
		if r.IntN(2) == 0 {
			page.Next = &next
		}
		if r.IntN(2) == 0 {
			page.Previous = &next
		}
		want, err := json.Marshal(page)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := page.appendJSON(nil)
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("page %d: appendJSON = %q (ok %v)\nencoding/json = %q", i, got, ok, want)
		}
		for _, task := range page.Results {
			want, _ := json.Marshal(task)
			if got, ok := task.appendJSON(nil); !ok || !bytes.Equal(got, want) {
				t.Fatalf("task: appendJSON = %q (ok %v)\nencoding/json = %q", got, ok, want)
			}
		}
	}
}

// TestSelfEncodingFallsBack: a value the hand-written path cannot write
// goes through encoding/json, error included.
func TestSelfEncodingFallsBack(t *testing.T) {
	far := taskJSON{ID: uuid.New(), Title: "Far future", CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, ok := far.appendJSON(nil); ok {
		t.Fatal("appendJSON wrote a year encoding/json refuses")
	}
	if _, ok := (pageJSON[taskJSON]{}).appendJSON(nil); ok {
		t.Fatal("appendJSON wrote a nil results list as []; encoding/json writes null")
	}
	if _, ok := (pageJSON[keyJSON]{Results: []keyJSON{{}}}).appendJSON(nil); ok {
		t.Fatal("appendJSON claimed a page of items that do not write themselves")
	}

	s := &Server{log: discardLogger()}
	w := httptest.NewRecorder()
	s.encode(w, http.StatusOK, far)
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("encode(year 10000) status = %d, want 500 as encoding/json fails it", w.Code)
	}
	w = httptest.NewRecorder()
	s.encode(w, http.StatusCreated, taskJSON{ID: uuid.New(), Title: "Buy milk", CreatedAt: time.Now().UTC()})
	if got, want := w.Header().Get("Content-Length"), strconv.Itoa(w.Body.Len()); got != want {
		t.Fatalf("Content-Length = %q, body has %s bytes", got, want)
	}
	if b := w.Body.Bytes(); len(b) == 0 || b[len(b)-1] != '\n' {
		t.Fatalf("body %q does not end in a newline as json.Encoder's answers do", b)
	}
}

// FuzzAppendString: any string, valid UTF-8 or not, is written as
// encoding/json writes it.
func FuzzAppendString(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %q, encoding/json = %q", s, got, want)
		}
	})
}
