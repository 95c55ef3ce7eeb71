package task

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

var titleTests = []struct {
	title string
	want  bool
}{
	{"Buy milk", true},
	{"Tâche numéro 1", true},
	{"Задача 42", true},
	{"任务清单", true},
	{"مهمة ٤٢", true},
	{"e\u0301te", true}, // "été" with decomposed accents
	{"कार्य सूची", true},
	{"タスク 三", true},
	{"42", true},
	{"  leading and trailing  ", true},
	{"bad!title", false},
	{"tab\there", false},
	{"new\nline", false},
	{"nul\x00byte", false},
	{"   ", false},
	{"", false},
	{"emoji 😀", false},
	{"hyphen-ated", false},
	{"under_score", false},
	{"<script>", false},
	{"'; DROP TABLE tasks; --", false},
	{"\u0301accent first", false},
	{"no\u00a0break", false},
	{"zero\u200bwidth", false},
	{"right\u202eleft", false},
	{"\xff\xfe", false},
}

func TestValidTitle(t *testing.T) {
	for _, tt := range titleTests {
		t.Run(tt.title, func(t *testing.T) {
			if got := ValidTitle(tt.title); got != tt.want {
				t.Fatalf("ValidTitle(%q) = %v, want %v", tt.title, got, tt.want)
			}
		})
	}
}

func FuzzValidTitle(f *testing.F) {
	for _, tt := range titleTests {
		f.Add(tt.title)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidTitle(s) {
			return
		}
		if !utf8.ValidString(s) {
			t.Fatalf("ValidTitle accepted invalid UTF-8 %q", s)
		}
		if strings.IndexFunc(s, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) < 0 {
			t.Fatalf("ValidTitle accepted %q, which has no letter or digit", s)
		}
		if strings.ContainsRune(s, '!') {
			t.Fatalf("ValidTitle accepted %q, which has a '!'", s)
		}
		if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
			t.Fatalf("ValidTitle accepted %q, which has control character %U", s, []rune(s[i:])[0])
		}
		if i := strings.IndexFunc(s, func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) && r != ' '
		}); i >= 0 {
			t.Fatalf("ValidTitle accepted %q, which has %U, neither letter, digit, mark nor space", s, []rune(s[i:])[0])
		}
	})
}

func TestValidUsername(t *testing.T) {
	tests := []struct {
		username string
		want     bool
	}{
		{"alice", true},
		{"Alice_99", true},
		{"a.b+c-d_e@example.com", true},
		{"José", true},
		{"пользователь", true},
		{"", false},
		{"alice smith", false},
		{"alice!", false},
		{"alice/../bob", false},
		{"a\nb", false},
		{"<b>", false},
		{strings.Repeat("é", MaxUsernameLen), true},
		{strings.Repeat("a", MaxUsernameLen+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.username, func(t *testing.T) {
			if got := ValidUsername(tt.username); got != tt.want {
				t.Fatalf("ValidUsername(%q) = %v, want %v", tt.username, got, tt.want)
			}
			if got := UsernameProblem(tt.username); (got == "") != tt.want {
				t.Fatalf("UsernameProblem(%q) = %q, want a sentence exactly when the username is not valid", tt.username, got)
			}
		})
	}
}

// TestTitleMarksNeedALetter: a combining mark must sit on a letter or
// digit, not on a space or at the start.
func TestTitleMarksNeedALetter(t *testing.T) {
	for _, title := range []string{"ab \u0301", "\u0301abc", "abc \u0308 def"} {
		if ValidTitle(title) {
			t.Errorf("ValidTitle(%q) = true, want false", title)
		}
	}
	if !ValidTitle("cafe\u0301 noir") {
		t.Error("a mark on a letter must be accepted")
	}
}
