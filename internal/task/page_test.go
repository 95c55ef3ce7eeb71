package task

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestCursorWireFormat pins the encoding: cursors already in clients'
// hands (next and previous links) must keep working across releases.
func TestCursorWireFormat(t *testing.T) {
	id := uuid.MustParse("6f1c0a52-3d7e-4b8a-9c1d-2e3f4a5b6c7d")
	tests := []struct {
		name string
		c    Cursor
		wire string
	}{
		{"time, backward", Cursor{Ordering: OrderCreatedDesc, Key: "2024-05-01T12:00:00.123456789Z", ID: id, Backward: true},
			"eyJvIjoiLWNyZWF0ZWRfYXQiLCJrIjoiMjAyNC0wNS0wMVQxMjowMDowMC4xMjM0NTY3ODlaIiwiaSI6IjZmMWMwYTUyLTNkN2UtNGI4YS05YzFkLTJlM2Y0YTViNmM3ZCIsImIiOnRydWV9"},
		{"title", Cursor{Ordering: OrderTitleAsc, Key: "Plan the sprint", ID: id},
			"eyJvIjoidGl0bGUiLCJrIjoiUGxhbiB0aGUgc3ByaW50IiwiaSI6IjZmMWMwYTUyLTNkN2UtNGI4YS05YzFkLTJlM2Y0YTViNmM3ZCJ9"},
		{"one fixed order", TimeCursor("", time.Date(2024, 5, 1, 14, 0, 0, 0, time.FixedZone("CEST", 2*3600)), id),
			"eyJvIjoiIiwiayI6IjIwMjQtMDUtMDFUMTI6MDA6MDBaIiwiaSI6IjZmMWMwYTUyLTNkN2UtNGI4YS05YzFkLTJlM2Y0YTViNmM3ZCJ9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Encode(); got != tt.wire {
				t.Fatalf("Encode = %s, want %s", got, tt.wire)
			}
			got, err := DecodeCursor(tt.wire, tt.c.Ordering)
			if err != nil || *got != tt.c {
				t.Fatalf("DecodeCursor = %+v, %v; want %+v", got, err, tt.c)
			}
		})
	}
}

// TestDecodeCursorRefuses: anything but a cursor made for the list's
// ordering is the one 400.
func TestDecodeCursorRefuses(t *testing.T) {
	id := uuid.New()
	title := Cursor{Ordering: OrderTitleAsc, Key: "x", ID: id}
	tests := []struct {
		name string
		s    string
		o    Ordering
	}{
		{"not base64", "not a cursor!", ""},
		{"padded base64", title.Encode() + "=", OrderTitleAsc},
		{"not JSON", "bm90IGpzb24", ""},
		{"another ordering", title.Encode(), OrderCreatedDesc},
		{"no id", (&Cursor{Ordering: OrderTitleAsc, Key: "x"}).Encode(), OrderTitleAsc},
		{"too long", (&Cursor{Ordering: OrderTitleAsc, Key: strings.Repeat("x", maxCursorLen), ID: id}).Encode(), OrderTitleAsc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := DecodeCursor(tt.s, tt.o); !errors.Is(err, ErrBadCursor) {
				t.Fatalf("DecodeCursor = %+v, %v; want ErrBadCursor", c, err)
			}
		})
	}
	if c, err := DecodeCursor("", OrderTitleAsc); c != nil || err != nil {
		t.Fatalf("DecodeCursor(\"\") = %+v, %v; want the first page", c, err)
	}
	if _, err := (&Cursor{Key: "yesterday", ID: id}).Time(); !errors.Is(err, ErrBadCursor) {
		t.Fatalf("Time of a key that is no time: err = %v, want ErrBadCursor", err)
	}
}

// TestResumeAt: a search page that stopped short links onwards from the
// row it reached, in the direction it was walking, and an empty one links
// back to where it came from.
func TestResumeAt(t *testing.T) {
	reached := Cursor{Key: "r", ID: uuid.New()}
	came := &Cursor{Key: "c", ID: uuid.New()}
	item := &Task{ID: uuid.New()}
	tests := []struct {
		name           string
		items          []*Task
		cur            *Cursor
		next, previous *Cursor
	}{
		{"first page, empty", nil, nil, &Cursor{Key: "r", ID: reached.ID}, nil},
		{"forward, empty", nil, came, &Cursor{Key: "r", ID: reached.ID}, &Cursor{Key: "c", ID: came.ID, Backward: true}},
		{"backward, empty", nil, &Cursor{Key: "c", ID: came.ID, Backward: true},
			&Cursor{Key: "c", ID: came.ID}, &Cursor{Key: "r", ID: reached.ID, Backward: true}},
		{"forward, some found", []*Task{item}, nil, &Cursor{Key: "r", ID: reached.ID}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Page[*Task]{Items: tt.items}
			p.ResumeAt(tt.cur, reached)
			if !sameCursor(p.Next, tt.next) || !sameCursor(p.Previous, tt.previous) {
				t.Fatalf("next %+v previous %+v, want %+v and %+v", p.Next, p.Previous, tt.next, tt.previous)
			}
		})
	}
}

func sameCursor(a, b *Cursor) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
