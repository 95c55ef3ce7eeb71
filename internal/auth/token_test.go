package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef-test-signing-key")
	otherKey = []byte("fedcba9876543210fedcba9876543210-other-signing-key")
)

const (
	testIssuer     = "taskmanager"
	testAudience   = "taskmanager-api"
	testAccessTTL  = 15 * time.Minute
	testRefreshTTL = 7 * 24 * time.Hour
)

func testTokenConfig() TokenConfig {
	return TokenConfig{
		Key:        testKey,
		Issuer:     testIssuer,
		Audience:   testAudience,
		AccessTTL:  testAccessTTL,
		RefreshTTL: testRefreshTTL,
	}
}

func newTestTokens() *Tokens { return NewTokens(testTokenConfig()) }

func issue(t testing.TB, tokens *Tokens, k Kind, now time.Time) (raw string, userID, sessionID uuid.UUID) {
	t.Helper()
	userID, sessionID = uuid.New(), uuid.New()
	raw, _, err := tokens.Issue(k, userID, sessionID, now, now)
	if err != nil {
		t.Fatalf("Issue(%s): %v", k, err)
	}
	return raw, userID, sessionID
}

// segments decodes the JSON header and payload of a compact JWT.
func segments(t *testing.T, raw string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments, want 3: %q", len(parts), raw)
	}
	decode := func(seg string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(seg)
		if err != nil {
			t.Fatalf("segment %q: %v", seg, err)
		}
		m := map[string]any{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("segment %s: %v", b, err)
		}
		return m
	}
	return decode(parts[0]), decode(parts[1])
}

func b64JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// validClaims are the claims Issue would write for an access token.
func validClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer,
		"aud": []string{testAudience},
		"sub": uuid.NewString(),
		"sid": uuid.NewString(),
		"jti": uuid.NewString(),
		"iat": now.Unix(),
		"exp": now.Add(testAccessTTL).Unix(),
	}
}

// forge signs claims with key under an HS header carrying typ and kid, as
// an attacker who controls every byte of the token would.
func forge(t testing.TB, method jwt.SigningMethod, key []byte, typ, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["typ"] = typ
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func TestTokensRoundTrip(t *testing.T) {
	tokens := newTestTokens()
	for _, k := range []Kind{Access, Refresh} {
		t.Run(string(k), func(t *testing.T) {
			now := time.Now()
			userID, sessionID := uuid.New(), uuid.New()
			raw, exp, err := tokens.Issue(k, userID, sessionID, now, now)
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			got, err := tokens.Verify(k, raw)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.UserID != userID {
				t.Errorf("UserID = %s, want %s", got.UserID, userID)
			}
			if got.SessionID != sessionID {
				t.Errorf("SessionID = %s, want %s", got.SessionID, sessionID)
			}
			if got.ID == "" {
				t.Errorf("ID is empty, want the token's jti")
			}
			if !got.ExpiresAt.Equal(exp) {
				t.Errorf("ExpiresAt = %v, want %v (as Issue returned)", got.ExpiresAt, exp)
			}
			if d := exp.Sub(now); d < tokens.TTL(k)-time.Second || d > tokens.TTL(k) {
				t.Errorf("exp - now = %v, want about %v", d, tokens.TTL(k))
			}
		})
	}
}

func TestTokensUniqueIDs(t *testing.T) {
	tokens := newTestTokens()
	now := time.Now()
	userID, sessionID := uuid.New(), uuid.New()
	a, _, _ := tokens.Issue(Refresh, userID, sessionID, now, now)
	b, _, _ := tokens.Issue(Refresh, userID, sessionID, now, now)
	if a == b {
		t.Fatalf("two refresh tokens issued in one second are equal, want distinct (rotation stores each by hash)")
	}
	ta, errA := tokens.Verify(Refresh, a)
	tb, errB := tokens.Verify(Refresh, b)
	if errA != nil || errB != nil {
		t.Fatalf("Verify: %v, %v", errA, errB)
	}
	if ta.ID == tb.ID {
		t.Fatalf("jti = %q twice, want unique", ta.ID)
	}
}

func TestTokensKindsAreNotInterchangeable(t *testing.T) {
	tokens := newTestTokens()
	now := time.Now()
	tests := []struct {
		issued, verified Kind
	}{
		{Access, Refresh},
		{Refresh, Access},
	}
	for _, tt := range tests {
		t.Run(string(tt.issued)+" as "+string(tt.verified), func(t *testing.T) {
			raw, _, _ := issue(t, tokens, tt.issued, now)
			if _, err := tokens.Verify(tt.issued, raw); err != nil {
				t.Fatalf("Verify as its own kind: %v", err)
			}
			got, err := tokens.Verify(tt.verified, raw)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify(%s, %s token) = %+v, %v; want ErrInvalidToken", tt.verified, tt.issued, got, err)
			}
		})
	}
}

func TestTokensExpiry(t *testing.T) {
	tokens := newTestTokens()
	tests := []struct {
		name   string
		kind   Kind
		issued time.Time
		valid  bool
	}{
		{"access, fresh", Access, time.Now(), true},
		{"access, expired within leeway", Access, time.Now().Add(-testAccessTTL - Leeway/2), true},
		{"access, expired beyond leeway", Access, time.Now().Add(-testAccessTTL - Leeway - 2*time.Second), false},
		{"access, expired long ago", Access, time.Now().Add(-24 * time.Hour), false},
		{"refresh, 6 days old", Refresh, time.Now().Add(-6 * 24 * time.Hour), true},
		{"refresh, expired beyond leeway", Refresh, time.Now().Add(-testRefreshTTL - Leeway - 2*time.Second), false},
		{"access, issued in the future", Access, time.Now().Add(time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, _, _ := issue(t, tokens, tt.kind, tt.issued)
			_, err := tokens.Verify(tt.kind, raw)
			if tt.valid && err != nil {
				t.Fatalf("Verify = %v, want valid", err)
			}
			if !tt.valid && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify error = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestTokensPinIssuerAndAudience(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name   string
		mutate func(*TokenConfig)
	}{
		{"other audience", func(c *TokenConfig) { c.Audience = "another-api" }},
		{"other issuer", func(c *TokenConfig) { c.Issuer = "someone-else" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Same key, so only the claim can tell the services apart.
			cfg := testTokenConfig()
			tt.mutate(&cfg)
			foreign := NewTokens(cfg)
			ours := newTestTokens()

			fromForeign, _, _ := issue(t, foreign, Access, now)
			if _, err := ours.Verify(Access, fromForeign); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("our Verify of a foreign token: error = %v, want ErrInvalidToken", err)
			}
			fromUs, _, _ := issue(t, ours, Access, now)
			if _, err := foreign.Verify(Access, fromUs); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("foreign Verify of our token: error = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestTokensRejectForgeries(t *testing.T) {
	tokens := newTestTokens()
	kid := KeyID(testKey)
	now := time.Now()
	valid, _, _ := issue(t, tokens, Access, now)
	parts := strings.Split(valid, ".")

	without := func(claim string) jwt.MapClaims {
		c := validClaims(now)
		delete(c, claim)
		return c
	}
	with := func(claim string, v any) jwt.MapClaims {
		c := validClaims(now)
		c[claim] = v
		return c
	}

	// The control: a token forged with our key and every right field is
	// accepted, so each rejection below is down to its one difference.
	if _, err := tokens.Verify(Access, forge(t, jwt.SigningMethodHS256, testKey, "at+jwt", kid, validClaims(now))); err != nil {
		t.Fatalf("Verify of a correctly built token: %v", err)
	}

	tamperedPayload := func() string {
		_, payload := segments(t, valid)
		payload["sub"] = uuid.NewString()
		return parts[0] + "." + b64JSON(t, payload) + "." + parts[2]
	}()
	tamperedHeader := func() string {
		header, _ := segments(t, valid)
		header["alg"] = "HS512"
		return b64JSON(t, header) + "." + parts[1] + "." + parts[2]
	}()

	tests := []struct {
		name string
		raw  string
	}{
		{"empty", ""},
		{"garbage", "not a token"},
		{"two segments", parts[0] + "." + parts[1]},
		{"no signature", parts[0] + "." + parts[1] + "."},
		{"alg none, no signature", b64JSON(t, map[string]string{"alg": "none", "typ": "at+jwt", "kid": kid}) +
			"." + parts[1] + "."},
		{"alg none, original signature", b64JSON(t, map[string]string{"alg": "none", "typ": "at+jwt", "kid": kid}) +
			"." + parts[1] + "." + parts[2]},
		{"alg None", b64JSON(t, map[string]string{"alg": "None", "typ": "at+jwt", "kid": kid}) + "." + parts[1] + "."},
		{"alg HS512, our key", forge(t, jwt.SigningMethodHS512, testKey, "at+jwt", kid, validClaims(now))},
		{"alg HS384, our key", forge(t, jwt.SigningMethodHS384, testKey, "at+jwt", kid, validClaims(now))},
		{"other key, our kid", forge(t, jwt.SigningMethodHS256, otherKey, "at+jwt", kid, validClaims(now))},
		{"other key, its kid", forge(t, jwt.SigningMethodHS256, otherKey, "at+jwt", KeyID(otherKey), validClaims(now))},
		{"our key, unknown kid", forge(t, jwt.SigningMethodHS256, testKey, "at+jwt", "0123456789abcdef", validClaims(now))},
		{"our key, no kid", forge(t, jwt.SigningMethodHS256, testKey, "at+jwt", "", validClaims(now))},
		{"typ JWT", forge(t, jwt.SigningMethodHS256, testKey, "JWT", kid, validClaims(now))},
		{"typ upper case", forge(t, jwt.SigningMethodHS256, testKey, "AT+JWT", kid, validClaims(now))},
		{"no exp", forge(t, jwt.SigningMethodHS256, testKey, "at+jwt", kid, without("exp"))},
		{"no sub", forge(t, jwt.SigningMethodHS256, testKey, "at+jwt", kid, without("sub"))},
		{"no sid", forge(t, jwt.SigningMethodHS256, testKey, "at+jwt", kid, without("sid"))},
		{"no jti", forge(t, jwt.SigningMethodHS256, testKey, "at+jwt", kid, without("jti"))},
		{"no iss", forge(t, jwt.SigningMethodHS256, testKey, "at+jwt", kid, without("iss"))},
		{"no aud", forge(t, jwt.SigningMethodHS256, testKey, "at+jwt", kid, without("aud"))},
		{"sub not a uuid", forge(t, jwt.SigningMethodHS256, testKey, "at+jwt", kid, with("sub", "admin"))},
		{"sid not a uuid", forge(t, jwt.SigningMethodHS256, testKey, "at+jwt", kid, with("sid", "1"))},
		{"nbf in the future", forge(t, jwt.SigningMethodHS256, testKey, "at+jwt", kid, with("nbf", now.Add(time.Hour).Unix()))},
		{"tampered payload", tamperedPayload},
		{"tampered header", tamperedHeader},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(forge(t, jwt.SigningMethodHS256, testKey, "at+jwt", kid, validClaims(now)), ".")[2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tokens.Verify(Access, tt.raw)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", got, err)
			}
			if got != nil {
				t.Fatalf("Verify returned token %+v with its error, want nil", got)
			}
		})
	}
}

func TestTokensHeaderAndClaims(t *testing.T) {
	tokens := newTestTokens()
	now := time.Now()
	tests := []struct {
		kind Kind
		typ  string
		ttl  time.Duration
	}{
		{Access, "at+jwt", testAccessTTL},
		{Refresh, "rt+jwt", testRefreshTTL},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			raw, userID, sessionID := issue(t, tokens, tt.kind, now)
			header, claims := segments(t, raw)

			if got := header["alg"]; got != "HS256" {
				t.Errorf("header alg = %v, want HS256", got)
			}
			if got := header["typ"]; got != tt.typ {
				t.Errorf("header typ = %v, want %s", got, tt.typ)
			}
			if got, want := header["kid"], KeyID(testKey); got != want {
				t.Errorf("header kid = %v, want %s", got, want)
			}

			for _, name := range []string{"iss", "aud", "sub", "exp", "iat", "jti", "sid"} {
				if _, ok := claims[name]; !ok {
					t.Errorf("claim %q missing; claims = %v", name, claims)
				}
			}
			if got := claims["iss"]; got != testIssuer {
				t.Errorf("iss = %v, want %s", got, testIssuer)
			}
			if !audienceContains(claims["aud"], testAudience) {
				t.Errorf("aud = %v, want %s", claims["aud"], testAudience)
			}
			if got := claims["sub"]; got != userID.String() {
				t.Errorf("sub = %v, want %s", got, userID)
			}
			if got := claims["sid"]; got != sessionID.String() {
				t.Errorf("sid = %v, want %s", got, sessionID)
			}
			if jti, _ := claims["jti"].(string); jti == "" {
				t.Errorf("jti = %v, want a non-empty string", claims["jti"])
			}
			exp, _ := claims["exp"].(float64)
			iat, _ := claims["iat"].(float64)
			if got, want := time.Duration(exp-iat)*time.Second, tt.ttl; got != want {
				t.Errorf("exp - iat = %v, want %v", got, want)
			}
			if got, want := int64(iat), now.Unix(); got != want {
				t.Errorf("iat = %d, want %d", got, want)
			}
		})
	}
}

func audienceContains(aud any, want string) bool {
	switch v := aud.(type) {
	case string:
		return v == want
	case []any:
		for _, a := range v {
			if a == want {
				return true
			}
		}
	}
	return false
}

func TestTokensDoNotRevealKey(t *testing.T) {
	tokens := newTestTokens()
	raw, _, _ := issue(t, tokens, Access, time.Now())
	header, payload := segments(t, raw)
	all, _ := json.Marshal([]any{header, payload})
	if strings.Contains(string(all), string(testKey)) {
		t.Fatalf("token carries the signing key: %s", all)
	}
	if kid := KeyID(testKey); len(kid) != 16 {
		t.Fatalf("KeyID = %q, want 16 hex characters", kid)
	}
	if KeyID(testKey) == KeyID(otherKey) {
		t.Fatalf("KeyID is %q for two keys, want distinct", KeyID(testKey))
	}
}

func FuzzVerifyToken(f *testing.F) {
	tokens := newTestTokens()
	now := time.Now()
	access, _, _ := issue(f, tokens, Access, now)
	refresh, _, _ := issue(f, tokens, Refresh, now)
	kid := KeyID(testKey)
	claims := validClaims(now)

	seeds := []string{
		"",
		".",
		"..",
		"a.b.c",
		"a.b.c.d",
		"eyJ.eyJ.",
		access,
		refresh,
		access + ".",
		strings.ToUpper(access),
		forge(f, jwt.SigningMethodHS512, testKey, "at+jwt", kid, claims),
		forge(f, jwt.SigningMethodHS256, otherKey, "at+jwt", kid, claims),
		b64JSON(f, map[string]string{"alg": "none", "typ": "at+jwt", "kid": kid}) + "." + b64JSON(f, claims) + ".",
		b64JSON(f, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": 7}) + "." + b64JSON(f, claims) + ".",
		b64JSON(f, map[string]any{"alg": "HS256", "typ": []string{"at+jwt"}, "kid": kid}) + "." + b64JSON(f, map[string]any{"exp": "soon", "aud": 3}) + ".",
		"eyJhbGciOiJIUzI1NiJ9.bnVsbA.",
	}
	for i, s := range seeds {
		f.Add(s, uint16(i*7), byte("Aa0._-=+/ \n"[i%11]), i%2 == 0)
	}

	f.Fuzz(func(t *testing.T, raw string, pos uint16, b byte, insert bool) {
		for _, k := range []Kind{Access, Refresh} {
			if tok, err := tokens.Verify(k, raw); err == nil && tok == nil {
				t.Fatalf("Verify(%s, %q) = nil, nil", k, raw)
			}
		}

		// One byte of a valid token replaced, or one byte inserted: only the
		// untouched token may verify.
		for _, orig := range []struct {
			kind Kind
			raw  string
		}{{Access, access}, {Refresh, refresh}} {
			i := int(pos) % (len(orig.raw) + 1)
			var mutated string
			if insert || i == len(orig.raw) {
				mutated = orig.raw[:i] + string([]byte{b}) + orig.raw[i:]
			} else {
				mutated = orig.raw[:i] + string([]byte{b}) + orig.raw[i+1:]
			}
			if mutated == orig.raw {
				continue
			}
			if _, err := tokens.Verify(orig.kind, mutated); err == nil {
				t.Fatalf("Verify(%s) accepted a mutated token:\n got  %q\n from %q", orig.kind, mutated, orig.raw)
			}
		}
	})
}

func BenchmarkVerifyAccessToken(b *testing.B) {
	tokens := newTestTokens()
	raw, _, _ := issue(b, tokens, Access, time.Now())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tokens.Verify(Access, raw); err != nil {
			b.Fatal(err)
		}
	}
}

// TestExpiredTokenIsToldApart: a client is told to refresh only for a token
// we signed whose time is up; a forged one that is also expired is just invalid.
func TestExpiredTokenIsToldApart(t *testing.T) {
	tokens := newTestTokens()
	old := time.Now().Add(-time.Hour)
	raw, _, _ := issue(t, tokens, Access, old)
	if _, err := tokens.Verify(Access, raw); !errors.Is(err, ErrExpiredToken) || !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Verify(expired) error = %v, want ErrExpiredToken (an ErrInvalidToken)", err)
	}
	forged, _, _ := issue(t, NewTokens(TokenConfig{Key: otherKey, Issuer: testIssuer, Audience: testAudience,
		AccessTTL: testAccessTTL, RefreshTTL: testRefreshTTL}), Access, old)
	if _, err := tokens.Verify(Access, forged); errors.Is(err, ErrExpiredToken) || !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Verify(expired, foreign key) error = %v, want plain ErrInvalidToken", err)
	}
}

// TestSessionMaxAgeCapsEveryToken: refreshing cannot stretch a session past
// its sign-in time plus the maximum age.
func TestSessionMaxAgeCapsEveryToken(t *testing.T) {
	cfg := testTokenConfig()
	cfg.SessionMaxAge = 30 * 24 * time.Hour
	tokens := NewTokens(cfg)
	uid, sid := uuid.New(), uuid.New()
	signedIn := time.Now().Add(-29*24*time.Hour - 23*time.Hour) // one hour of the session left

	raw, exp, err := tokens.Issue(Refresh, uid, sid, signedIn, time.Now())
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if end := signedIn.Add(cfg.SessionMaxAge); exp.After(end) {
		t.Fatalf("refresh token expires %v, after the session's end %v", exp, end)
	}
	got, err := tokens.Verify(Refresh, raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !got.AuthTime.Equal(signedIn.Truncate(time.Second)) {
		t.Errorf("AuthTime = %v, want the sign-in time %v", got.AuthTime, signedIn.Truncate(time.Second))
	}
	if _, _, err := tokens.Issue(Access, uid, sid, signedIn, signedIn.Add(cfg.SessionMaxAge)); !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("Issue at the session's end: error = %v, want ErrSessionEnded", err)
	}
}

// TestVerifiedAccessTokenStillExpires: an access token remembered as
// verified is refused as expired once its time is up, as a fresh parse
// would refuse it, and the copy a caller gets cannot change the next one.
func TestVerifiedAccessTokenStillExpires(t *testing.T) {
	now := time.Now()
	cfg := testTokenConfig()
	cfg.Now = func() time.Time { return now }
	tokens := NewTokens(cfg)
	raw, userID, _ := issue(t, tokens, Access, now)

	first, err := tokens.Verify(Access, raw)
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	first.UserID = uuid.Nil // a careless caller
	again, err := tokens.Verify(Access, raw)
	if err != nil || again.UserID != userID {
		t.Fatalf("Verify again = %+v, %v; want the same user %s", again, err, userID)
	}

	now = now.Add(testAccessTTL + Leeway/2)
	if _, err := tokens.Verify(Access, raw); err != nil {
		t.Fatalf("Verify within the leeway = %v, want valid", err)
	}
	now = now.Add(Leeway)
	if _, err := tokens.Verify(Access, raw); !errors.Is(err, ErrExpiredToken) {
		t.Fatalf("Verify after expiry = %v, want ErrExpiredToken", err)
	}
}

// TestVerifiedTokensAreBounded: remembering tokens cannot grow without end,
// and a token pushed out is still verified by parsing it again.
func TestVerifiedTokensAreBounded(t *testing.T) {
	tokens := newTestTokens()
	now := time.Now()
	first, _, _ := issue(t, tokens, Access, now)
	if _, err := tokens.Verify(Access, first); err != nil {
		t.Fatal(err)
	}
	for range verifiedMax + 10 {
		raw, _, _ := issue(t, tokens, Access, now)
		if _, err := tokens.Verify(Access, raw); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(tokens.seen.m); n > verifiedMax {
		t.Fatalf("%d tokens remembered, want at most %d", n, verifiedMax)
	}
	if _, err := tokens.Verify(Access, first); err != nil {
		t.Fatalf("Verify(first token, maybe pushed out) = %v, want valid", err)
	}
}

// TestRefreshTokensAreParsedEveryTime: only access tokens are remembered; a
// refresh token is single use and checked against the store each time.
func TestRefreshTokensAreParsedEveryTime(t *testing.T) {
	tokens := newTestTokens()
	raw, _, _ := issue(t, tokens, Refresh, time.Now())
	if _, err := tokens.Verify(Refresh, raw); err != nil {
		t.Fatal(err)
	}
	if n := len(tokens.seen.m); n != 0 {
		t.Fatalf("%d tokens remembered after verifying a refresh token, want 0", n)
	}
	if _, err := tokens.Verify(Access, raw); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Verify(Access, refresh token) = %v, want ErrInvalidToken", err)
	}
}
