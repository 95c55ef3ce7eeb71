package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/acme/taskmanager/internal/task"
)

// jsonCSP forbids a JSON answer from doing anything if a browser renders it.
const jsonCSP = "default-src 'none'; frame-ancestors 'none'"

// encode writes v as JSON with status.
func (s *Server) encode(w http.ResponseWriter, status int, v any) {
	bp := encodeBuffers.Get().(*[]byte)
	b, ok := (*bp)[:0], false
	if se, is := v.(selfEncoding); is {
		if b, ok = se.appendJSON(b); ok {
			b = append(b, '\n') // as json.Encoder ends every value
		}
	}
	if !ok {
		buf := bytes.NewBuffer(b[:0])
		if err := json.NewEncoder(buf).Encode(v); err != nil {
			// Only a programming error gets here; say nothing more than a 500 would.
			s.log.Error("encode response", "err", err.Error())
			buf.Reset()
			buf.WriteString(`{"error":{"code":"internal_error","message":"Internal server error."}}`)
			status = http.StatusInternalServerError
		}
		b = buf.Bytes()
	}
	writeJSON(w, status, b)
	if cap(b) <= maxPooledBuffer {
		*bp = b[:0]
		encodeBuffers.Put(bp)
	}
}

// writeJSON writes b, a JSON answer, with status.
func writeJSON(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Security-Policy", jsonCSP)
	// A length spares net/http the chunked encoding of answers over 2 KiB.
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// marshal is the JSON encode would write for v, in a buffer of its own.
func marshal(v any) ([]byte, error) {
	if se, is := v.(selfEncoding); is {
		if b, ok := se.appendJSON(nil); ok {
			return append(b, '\n'), nil
		}
	}
	var buf bytes.Buffer
	err := json.NewEncoder(&buf).Encode(v)
	return buf.Bytes(), err
}

// encodeBuffers keeps answer buffers between requests; one list page of
// 100 long tasks fits the largest one kept.
var encodeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

const maxPooledBuffer = 256 << 10

// request is the body of a request. Its valid method runs once decode has
// filled it: it checks the rules that need more than the JSON types,
// trims what it keeps, and reports every problem at once as one
// validation error. A handler then only acts on a request that is valid.
type request interface {
	valid() error
}

// decode reads one JSON object from the body into dst and validates it. It
// demands application/json, caps the body at MAX_BODY_BYTES, rejects
// unknown fields and trailing data, and turns every failure into a client
// error with a safe message.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, dst request) error {
	_, err := s.decodeBody(w, r, dst)
	return err
}

// decodeBody is decode that also returns the body it read.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, dst request) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return nil, task.Errorf(task.EMEDIATYPE, "Request body must be sent as application/json.")
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, tooLarge(s.cfg.MaxBodyBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		return nil, decodeError(err, s.cfg.MaxBodyBytes)
	}
	if !utf8.Valid(body) {
		// encoding/json would quietly turn the bad bytes into U+FFFD.
		return nil, task.Errorf(task.EMALFORMED, "Request body is not valid UTF-8.")
	}
	// encoding/json matches field names case-insensitively and lets the
	// last of duplicate keys win; a strict API does neither.
	if err := checkKeys(body, dst); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields() // checkKeys sees only the top level; this guards nested objects

	if err := dec.Decode(dst); err != nil {
		return nil, decodeError(err, s.cfg.MaxBodyBytes)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return nil, task.Errorf(task.EMALFORMED, "Request body must contain a single JSON object.")
	}
	return body, dst.valid()
}

// checkKeys demands a JSON object whose top-level keys are dst's JSON
// field names, spelled exactly, each at most once. Anything that is not an
// object is left to the decoder's error messages, except null, which it
// would silently accept.
func checkKeys(body []byte, dst any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if bytes.Equal(trimmed, []byte("null")) {
			return task.Errorf(task.EBADREQUEST, "Request body must be a JSON object.")
		}
		return nil
	}
	known := fieldNames(reflect.TypeOf(dst))
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil { // the opening brace
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil // malformed: the decoder says so
		}
		key, _ := tok.(string)
		switch {
		case !known[key]:
			return task.FieldError(key, "Unknown field.")
		case seen[key]:
			return task.FieldError(key, "Duplicate field.")
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}

var fieldNameCache sync.Map // reflect.Type -> map[string]bool

// fieldNames lists the JSON names of a struct's fields.
func fieldNames(t reflect.Type) map[string]bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if names, ok := fieldNameCache.Load(t); ok {
		return names.(map[string]bool)
	}
	names := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			// encoding/json promotes an embedded struct's fields (stepUp).
			for n := range fieldNames(f.Type) {
				names[n] = true
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		if name != "-" && f.IsExported() {
			names[name] = true
		}
	}
	fieldNameCache.Store(t, names)
	return names
}

func tooLarge(limit int64) error {
	return task.Errorf(task.ETOOLARGE, "Request body is larger than %d bytes.", limit)
}

func decodeError(err error, limit int64) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return tooLarge(limit)
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return task.Errorf(task.EMALFORMED, "Request body is not valid JSON.")
	case errors.Is(err, io.EOF):
		return task.Errorf(task.EMALFORMED, "Request body must not be empty.")
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return task.Errorf(task.EBADREQUEST, "Request body must be a JSON object.")
		}
		return task.FieldError(typeErr.Field, "Must be "+jsonKind(typeErr.Type)+".")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this; the field name is quoted.
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return task.FieldError(name, "Unknown field.")
	}
	return task.Errorf(task.EMALFORMED, "Request body is not valid JSON.")
}

func jsonKind(t reflect.Type) string {
	if t == nil {
		return "of another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct:
		if t.Name() == "Time" {
			return "an RFC 3339 date-time"
		}
		return "an object"
	}
	return fmt.Sprintf("a %s", t.Kind())
}

// Optional is a JSON field that distinguishes absent, null and a value,
// which PATCH and "may not be null" need.
type Optional[T any] struct {
	Set   bool
	Null  bool
	Value T
}

// given reports whether the field holds a value.
func (o *Optional[T]) given() bool { return o.Set && !o.Null }

// UnmarshalJSON records that the field was present.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}
