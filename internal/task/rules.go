package task

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
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

// MaxUsernameLen is the longest username, in characters (Django's limit).
const MaxUsernameLen = 150

// ValidUsername is Django's username rule: 1 to MaxUsernameLen letters,
// digits and @ . + - _. Registration, createuser and the login's length
// cap all use it.
func ValidUsername(s string) bool { return UsernameProblem(s) == "" }

// UsernameProblem says, in a sentence for the client, why s is not a valid
// username; "" when it is.
func UsernameProblem(s string) string {
	if utf8.RuneCountInString(s) > MaxUsernameLen {
		return fmt.Sprintf("Username must be at most %d characters long.", MaxUsernameLen)
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("@.+-_", r) {
			return usernameChars
		}
	}
	if s == "" {
		return usernameChars
	}
	return ""
}

const usernameChars = "Enter a valid username: letters, digits and @/./+/-/_ only."
