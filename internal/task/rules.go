package task

import (
	"strings"
	"unicode"
)

// ValidTitle is the tutorial's title rule widened to every script: letters
// (with their combining marks), decimal digits and spaces, and at least one
// character that is not a space.
func ValidTitle(s string) bool {
	seen, inWord := false, false
	for _, r := range s {
		switch {
		case r == ' ':
			inWord = false
		case unicode.IsLetter(r) || unicode.Is(unicode.Nd, r):
			seen, inWord = true, true
		case unicode.Is(unicode.M, r) && inWord: // a mark belongs to the letter before it
		default:
			return false
		}
	}
	return seen
}

// ValidUsername is Django's username rule: letters, digits and @ . + - _.
func ValidUsername(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("@.+-_", r) {
			return false
		}
	}
	return s != ""
}
