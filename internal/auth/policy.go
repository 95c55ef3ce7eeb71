package auth

import (
	_ "embed"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Password length bounds, in characters.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 256
)

//go:embed common_passwords.txt
var commonList string

var common = func() map[string]bool {
	m := make(map[string]bool)
	for _, line := range strings.Split(commonList, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			m[line] = true
		}
	}
	return m
}()

// CheckPassword returns the reasons password may not be used by username,
// or nil when it is acceptable.
func CheckPassword(password, username string) []string {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLen:
		return []string{"This password is too short. It must contain at least 12 characters."}
	case n > MaxPasswordLen:
		return []string{"This password is too long. It must contain at most 256 characters."}
	}
	var problems []string
	lower := strings.ToLower(strings.TrimSpace(password))
	if u := strings.ToLower(strings.TrimSpace(username)); u != "" &&
		(lower == u || (strings.Contains(lower, u) && 2*utf8.RuneCountInString(u) >= n)) {
		problems = append(problems, "The password is too similar to the username.")
	}
	if isCommon(lower) {
		problems = append(problems, "This password is too common.")
	}
	if strings.IndexFunc(password, func(r rune) bool { return !unicode.IsDigit(r) }) < 0 {
		problems = append(problems, "This password is entirely numeric.")
	}
	return problems
}

func isCommon(lower string) bool {
	if common[lower] {
		return true
	}
	// "password1234", "Welcome2024!": a listed word padded with digits and symbols.
	stem := strings.TrimRightFunc(lower, func(r rune) bool { return unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) })
	return stem != lower && common[stem]
}
