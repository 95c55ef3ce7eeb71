package task

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"time"

	"github.com/google/uuid"
)

// This file owns the cursor: what it holds, its wire form (base64url of
// its JSON, which clients treat as opaque and send back), and how a page
// of a keyset-paginated list links to its neighbours. The HTTP layer only
// encodes and decodes it, the stores only read its position.

// Cursor marks a position in a list: the sort key and id of the row next to
// it, and whether the page runs backwards from there.
type Cursor struct {
	Ordering Ordering  `json:"o"` // empty in the lists with one fixed order
	Key      string    `json:"k"` // a title, or a time as TimeCursor writes it
	ID       uuid.UUID `json:"i"`
	Backward bool      `json:"b,omitempty"`
}

// ErrBadCursor answers a cursor this server did not make, or made for
// another ordering.
var ErrBadCursor = Errorf(EBADREQUEST, "Invalid cursor.")

// maxCursorLen bounds the JSON of a cursor a client sends: ours are far
// shorter, and no bigger one is worth decoding.
const maxCursorLen = 1024

// TimeCursor is the cursor at a row of a list ordered by time t, then id.
func TimeCursor(o Ordering, t time.Time, id uuid.UUID) Cursor {
	return Cursor{Ordering: o, Key: t.UTC().Format(time.RFC3339Nano), ID: id}
}

// Time is the key of a cursor into a list ordered by time; ErrBadCursor
// when it holds none.
func (c *Cursor) Time() (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, c.Key)
	if err != nil {
		return time.Time{}, ErrBadCursor
	}
	return t, nil
}

// Backwards reports whether the page from c runs backwards; the first page
// (no cursor) runs forwards.
func (c *Cursor) Backwards() bool { return c != nil && c.Backward }

// Encode is the opaque form of c that DecodeCursor reads.
func (c *Cursor) Encode() string {
	raw, _ := json.Marshal(c) // a struct of strings, a UUID and a bool always marshals
	return base64.RawURLEncoding.EncodeToString(raw)
}

// DecodeCursor reads a cursor that Encode made for a list in ordering o;
// nil for an empty s (the first page), ErrBadCursor for anything else.
func DecodeCursor(s string, o Ordering) (*Cursor, error) {
	if s == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) > maxCursorLen {
		return nil, ErrBadCursor
	}
	var c Cursor
	if err := json.Unmarshal(raw, &c); err != nil || c.Ordering != o || c.ID == uuid.Nil {
		return nil, ErrBadCursor
	}
	return &c, nil
}

// Page is one page of a keyset-paginated list, with the cursors of its
// neighbours (nil when there is none).
type Page[T any] struct {
	Items    []T
	Next     *Cursor
	Previous *Cursor
}

// NewPage makes the page of items, read from cur with one row more than
// limit to tell whether there is a further page; a backward page is read
// in reverse, from cur towards the start, and is put back in order. at is
// the cursor at an item.
func NewPage[T any](items []T, limit int, cur *Cursor, at func(T) Cursor) *Page[T] {
	more := len(items) > limit
	if more {
		items = items[:limit]
	}
	backward := cur.Backwards()
	if backward {
		slices.Reverse(items)
	}
	p := &Page[T]{Items: items}
	if len(items) == 0 {
		return p
	}
	first, last := at(items[0]), at(items[len(items)-1])
	first.Backward = true
	if backward {
		p.Next = &last
		if more {
			p.Previous = &first
		}
	} else {
		if more {
			p.Next = &last
		}
		if cur != nil {
			p.Previous = &first
		}
	}
	return p
}

// ResumeAt marks a page that stopped short (a search out of time) at the
// last row it walked, reached: the link onwards continues from there, so
// the page may hold fewer items than asked for and still have one. An
// empty page links back to cur, where it came from.
func (p *Page[T]) ResumeAt(cur *Cursor, reached Cursor) {
	backward := cur.Backwards()
	reached.Backward = backward
	if backward {
		p.Previous = &reached
	} else {
		p.Next = &reached
	}
	if len(p.Items) == 0 && cur != nil {
		back := *cur
		back.Backward = !backward
		if backward {
			p.Next = &back
		} else {
			p.Previous = &back
		}
	}
}
