package auth

import (
	"slices"
	"strings"
	"testing"
)

func TestCheckPassword(t *testing.T) {
	const (
		tooShort   = "This password is too short. It must contain at least 12 characters."
		tooLong    = "This password is too long. It must contain at most 256 characters."
		tooCommon  = "This password is too common."
		tooSimilar = "The password is too similar to the username."
		numeric    = "This password is entirely numeric."
	)
	tests := []struct {
		name     string
		password string
		username string
		want     []string // nil: accepted
	}{
		{"11 characters", "Tr0ub4dor&3", "alice", []string{tooShort}},
		{"12 characters", "Tr0ub4dor&3x", "alice", nil},
		{"empty", "", "alice", []string{tooShort}},
		// Length counts characters, not bytes: 11 'é' are 22 bytes.
		{"11 two-byte characters", strings.Repeat("é", 11), "alice", []string{tooShort}},
		{"12 two-byte characters", strings.Repeat("é", 12), "alice", nil},
		{"256 characters", strings.Repeat("xkcd", 64), "alice", nil},
		{"257 characters", strings.Repeat("xkcd", 64) + "!", "alice", []string{tooLong}},
		{"256 two-byte characters", strings.Repeat("é", 256), "alice", nil},
		{"257 two-byte characters", strings.Repeat("é", 257), "alice", []string{tooLong}},
		{"listed word padded with digits", "password1234", "alice", []string{tooCommon}},
		{"listed word padded, upper case", "PASSWORD1234", "alice", []string{tooCommon}},
		{"listed word with digits and symbol", "Welcome2024!", "alice", []string{tooCommon}},
		{"listed word with symbols only", "letmein!!!!!", "alice", []string{tooCommon}},
		{"listed as is", "qwertyuiopasdf", "alice", []string{tooCommon}},
		{"listed word padded, lower case", "qwertyuiop12", "alice", []string{tooCommon}},
		{"listed word with a letter after it", "welcome2024x", "alice", nil},
		{"listed sequence", "1q2w3e4r5t6y", "alice", []string{tooCommon}},
		{"equal to username", "AliceCooper1975", "alicecooper1975", []string{tooSimilar}},
		{"equal to username, other case", "alicecooper1975", "AliceCooper1975", []string{tooSimilar}},
		{"equal to username with spaces around", "alicecooper1975", "  AliceCooper1975 ", []string{tooSimilar}},
		{"mostly the username", "alicecooper1975!", "AliceCooper1975", []string{tooSimilar}},
		{"short username inside a long password", "my alice is a wonderful dog", "alice", nil},
		{"entirely numeric", "918273645546372", "alice", []string{numeric}},
		{"entirely numeric, other script", "٩١٨٢٧٣٦٤٥٥٤٦", "alice", []string{numeric}},
		{"digits and one letter", "91827364554637a", "alice", nil},
		{"strong passphrase", "correct horse battery staple", "alice", nil},
		{"strong passphrase, no username", "Sphinx of black quartz, judge my vow", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckPassword(tt.password, tt.username)
			if tt.want == nil {
				if len(got) != 0 {
					t.Fatalf("CheckPassword(%q, %q) = %q, want accepted", tt.password, tt.username, got)
				}
				return
			}
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Fatalf("CheckPassword(%q, %q) = %q, want it to contain %q", tt.password, tt.username, got, w)
				}
			}
		})
	}
}

func TestCheckPasswordReportsEveryProblem(t *testing.T) {
	// A numeric password equal to the username is both.
	got := CheckPassword("918273645546372", "918273645546372")
	want := []string{"The password is too similar to the username.", "This password is entirely numeric."}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("CheckPassword = %q, want it to contain %q", got, w)
		}
	}
}

// TestCommonPasswordPaddedWithSpaces: spaces around a common password do
// not make it uncommon.
func TestCommonPasswordPaddedWithSpaces(t *testing.T) {
	for _, pw := range []string{"password    ", "  password1234", " qwertyuiop123 "} {
		if got := CheckPassword(pw, "bob"); len(got) == 0 {
			t.Errorf("CheckPassword(%q) accepted a padded common password", pw)
		}
	}
}
