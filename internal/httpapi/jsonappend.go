package httpapi

import (
	"encoding/hex"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// selfEncoding is an answer that writes its own JSON: the task list and the
// task, the answers clients ask for most. encoding/json reaches their
// times and ids through MarshalJSON and MarshalText, which allocate and
// then re-scan what they returned; that was a fifth of a list request's
// CPU. appendJSON writes exactly the bytes encoding/json writes for the
// same value (tests compare the two), or reports false when it cannot.
type selfEncoding interface {
	appendJSON(b []byte) ([]byte, bool)
}

func (t taskJSON) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"id":`...)
	b = appendUUID(b, t.ID)
	b = append(b, `,"title":`...)
	b = appendString(b, t.Title)
	b = append(b, `,"description":`...)
	b = appendString(b, t.Description)
	if t.Completed {
		b = append(b, `,"completed":true,"created_at":`...)
	} else {
		b = append(b, `,"completed":false,"created_at":`...)
	}
	var ok1, ok2 bool
	b, ok1 = appendTime(b, t.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b, ok2 = appendTime(b, t.UpdatedAt)
	b = append(b, `,"created_by":`...)
	b = appendUUID(b, t.CreatedBy)
	return append(b, '}'), ok1 && ok2
}

// appendJSON writes the page when each of its items writes itself.
func (p pageJSON[T]) appendJSON(b []byte) ([]byte, bool) {
	if p.Results == nil {
		return b, false // null, which pageOf never makes
	}
	b = append(b, `{"results":[`...)
	for i := range p.Results {
		item, ok := any(&p.Results[i]).(selfEncoding)
		if !ok {
			return b, false
		}
		if i > 0 {
			b = append(b, ',')
		}
		if b, ok = item.appendJSON(b); !ok {
			return b, false
		}
	}
	b = append(b, `],"next":`...)
	b = appendOptionalString(b, p.Next)
	b = append(b, `,"previous":`...)
	b = appendOptionalString(b, p.Previous)
	return append(b, '}'), true
}

func appendOptionalString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

// appendUUID writes id as uuid.UUID's MarshalText does, quoted.
func appendUUID(b []byte, id uuid.UUID) []byte {
	var s [38]byte
	s[0], s[37] = '"', '"'
	hex.Encode(s[1:9], id[0:4])
	s[9] = '-'
	hex.Encode(s[10:14], id[4:6])
	s[14] = '-'
	hex.Encode(s[15:19], id[6:8])
	s[19] = '-'
	hex.Encode(s[20:24], id[8:10])
	s[24] = '-'
	hex.Encode(s[25:37], id[10:])
	return append(b, s[:]...)
}

// appendTime writes t as time.Time's MarshalJSON does; false for the years
// it refuses (outside 0 to 9999), which no stored row has.
func appendTime(b []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string the way encoding/json does with
// its default HTML escaping: <, > and & as \u escapes, U+2028 and U+2029
// escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
