package api

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"sigs.k8s.io/yaml"

	"github.com/acme/taskmanager/internal/task"
)

// patterns returns every `pattern` of a schema in the document, by JSON
// pointer.
func patterns(t *testing.T) map[string]string {
	t.Helper()
	raw, err := yaml.YAMLToJSON(OpenAPI)
	if err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var walk func(ptr string, v any)
	walk = func(ptr string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				// A property named "pattern" is a schema, not a pattern.
				if s, ok := child.(string); ok && k == "pattern" && !strings.HasSuffix(ptr, "/properties") {
					out[ptr+"/pattern"] = s
					continue
				}
				walk(ptr+"/"+strings.NewReplacer("~", "~0", "/", "~1").Replace(k), child)
			}
		case []any:
			for i, child := range v {
				walk(fmt.Sprintf("%s/%d", ptr, i), child)
			}
		}
	}
	walk("", doc)
	return out
}

// portableEscape is what may follow a backslash in a pattern: a hex escape,
// a control escape, or an escaped character that is not a letter or digit.
var portableEscape = regexp.MustCompile(`^(x[0-9A-Fa-f]{2}|[tnrfv]|[^A-Za-z0-9])`)

// nonPortable says what in p does not mean the same in every engine that
// reads OpenAPI documents (ECMA-262 without the u flag, as Postman's and
// Portman's validators, Go's RE2, Python's re, Java), or "".
func nonPortable(p string) string {
	for i := 0; i < len(p); i++ {
		switch {
		case p[i] == '\\':
			if !portableEscape.MatchString(p[i+1:]) {
				end := min(i+3, len(p))
				return fmt.Sprintf("escape %q (\\p, \\u, \\w, \\d, \\s, \\b and the like are Unicode-aware in some engines, literal or unknown in others; use a class with \\xHH ranges)", p[i:end])
			}
			i++ // the escaped character is not syntax
		case strings.HasPrefix(p[i:], "(?") && !strings.HasPrefix(p[i:], "(?:"):
			return fmt.Sprintf("group %q (lookarounds, named groups and inline flags are missing from RE2 or ECMA-262)", p[i:min(i+4, len(p))])
		case strings.HasPrefix(p[i:], "[[:"):
			return "a POSIX class (not in ECMA-262)"
		}
	}
	return ""
}

// TestPatternsArePortable fails on a `pattern` that some client's validator
// would read differently from the server, such as `\p{L}` (Postman reads it
// as the letters "p{L}").
func TestPatternsArePortable(t *testing.T) {
	found := patterns(t)
	if len(found) == 0 {
		t.Fatal("no pattern found in api/openapi.yaml; is the walk broken?")
	}
	ptrs := make([]string, 0, len(found))
	for ptr := range found {
		ptrs = append(ptrs, ptr)
	}
	sort.Strings(ptrs)
	for _, ptr := range ptrs {
		p := found[ptr]
		if why := nonPortable(p); why != "" {
			t.Errorf("%s: pattern %q is not portable: %s", ptr, p, why)
		}
		if _, err := regexp.Compile(p); err != nil {
			t.Errorf("%s: pattern %q does not compile in Go (kin-openapi): %v", ptr, p, err)
		}
	}
	for _, p := range []string{`^[\p{L} ]+$`, `^\w+$`, `(?<=a)b`, `^\u00e9$`, `(?i)abc`, `\d`} {
		if nonPortable(p) == "" {
			t.Errorf("nonPortable(%q) = \"\", want a reason", p)
		}
	}
}

// TestPatternsAcceptWhatTheServerAccepts holds each pattern that mirrors a
// server rule to that rule: a value the server accepts must match (the
// pattern may be looser, never stricter), and on ASCII, where a portable
// pattern can be exact, it must agree with the server both ways.
func TestPatternsAcceptWhatTheServerAccepts(t *testing.T) {
	found := patterns(t)
	rules := []struct {
		ptr   string
		valid func(string) bool
		// embed puts one character in an otherwise valid value.
		embed func(r rune) string
	}{
		{"/components/schemas/TaskTitle/pattern", task.ValidTitle, func(r rune) string { return "Ab" + string(r) + "c" }},
		{"/components/schemas/RegisterRequest/properties/username/pattern", task.ValidUsername, func(r rune) string { return "ab" + string(r) + "c" }},
	}
	for _, rule := range rules {
		p, ok := found[rule.ptr]
		if !ok {
			t.Errorf("%s: no pattern there any more; update this test", rule.ptr)
			continue
		}
		re := regexp.MustCompile(p)
		wrong := 0
		for r := rune(0); r <= utf8.MaxRune && wrong < 3; r++ { // a few wrong characters say enough
			if !utf8.ValidRune(r) {
				continue
			}
			v := rule.embed(r)
			server := rule.valid(v)
			if server && !re.MatchString(v) {
				t.Errorf("%s: pattern %q refuses %q (U+%04X), which the server accepts", rule.ptr, p, v, r)
				wrong++
			}
			if r < utf8.RuneSelf && !server && re.MatchString(v) {
				t.Errorf("%s: pattern %q accepts %q (U+%04X), which the server refuses", rule.ptr, p, v, r)
				wrong++
			}
		}
		for _, v := range []string{"Café crème", "Задача", "任务清单", "Tâche numéro 1", "e\u0301te\u0301 42", "𝒜𝒷𝒸", "josé", "Зоя_42"} {
			if rule.valid(v) && !re.MatchString(v) {
				t.Errorf("%s: pattern %q refuses %q, which the server accepts", rule.ptr, p, v)
			}
		}
	}
}
