package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/taskmanager/internal/auth"
)

// authenticator is a user's TOTP app in a test.
type authenticator struct {
	t      testing.TB
	secret string
	last   int64
}

// code is the code of the current step plus d steps; it waits for the
// next step first when the current one is about to end.
func (a *authenticator) code(d int64) string {
	a.t.Helper()
	for {
		now := time.Now()
		left := auth.TOTPPeriod - time.Duration(now.UnixNano()%int64(auth.TOTPPeriod))
		step := auth.TOTPStep(now)
		if left >= 4*time.Second {
			c, err := auth.TOTPCode(a.secret, step+d)
			if err != nil {
				a.t.Fatal(err)
			}
			return c
		}
		time.Sleep(left + 100*time.Millisecond)
	}
}

// fresh is a code for the earliest step within the skew that no code was
// used for yet, marked used: the current step, or the next one.
func (a *authenticator) fresh() string {
	a.t.Helper()
	for {
		now := time.Now()
		left := auth.TOTPPeriod - time.Duration(now.UnixNano()%int64(auth.TOTPPeriod))
		step := auth.TOTPStep(now)
		for _, s := range []int64{step, step + 1} {
			if s > a.last && left >= 4*time.Second {
				c, err := auth.TOTPCode(a.secret, s)
				if err != nil {
					a.t.Fatal(err)
				}
				a.last = s
				return c
			}
		}
		time.Sleep(left + 100*time.Millisecond)
	}
}

// wrong is a code of no step near now.
func (a *authenticator) wrong() string {
	near := map[string]bool{}
	now := auth.TOTPStep(time.Now())
	for d := int64(-3); d <= 3; d++ {
		c, _ := auth.TOTPCode(a.secret, now+d)
		near[c] = true
	}
	for _, c := range []string{"000000", "111111", "123456", "999999"} {
		if !near[c] {
			return c
		}
	}
	a.t.Fatal("no wrong code")
	return ""
}

type mfaErrorJSON struct {
	Error struct {
		Code string `json:"code"`
		MFA  struct {
			Token     string   `json:"token"`
			Methods   []string `json:"methods"`
			ExpiresIn int      `json:"expires_in"`
		} `json:"mfa"`
	} `json:"error"`
}

// enroll sets up TOTP for u and returns the app and the recovery codes.
func (e *testEnv) enroll(u *user) (*authenticator, []string) {
	e.t.Helper()
	en := decodeAs[totpEnrollmentJSON](e.do(req{method: "POST", path: "/api/me/mfa/totp/", auth: u.bearer(),
		body: map[string]string{"current_password": u.password}}).status(http.StatusCreated))
	if !strings.HasPrefix(en.OTPAuthURI, "otpauth://totp/") || !strings.Contains(en.OTPAuthURI, "secret="+en.Secret) ||
		!strings.HasPrefix(en.QRSVG, "<svg") {
		e.t.Fatalf("enrollment = %+v", en)
	}
	a := &authenticator{t: e.t, secret: en.Secret}
	rc := decodeAs[recoveryCodesJSON](e.do(req{method: "POST", path: "/api/me/mfa/totp/confirm/", auth: u.bearer(),
		body: map[string]string{"code": a.fresh()}}).status(http.StatusOK))
	if len(rc.RecoveryCodes) != 10 {
		e.t.Fatalf("recovery codes = %v, want 10", rc.RecoveryCodes)
	}
	return a, rc.RecoveryCodes
}

// passwordStep logs u in with the password and returns the mfa_token.
func (e *testEnv) passwordStep(u *user, ip string) string {
	e.t.Helper()
	r := e.do(req{method: "POST", path: "/api/token/", ip: ip, body: map[string]string{"username": u.username, "password": u.password}})
	r.errorCode(http.StatusUnauthorized, "mfa_required")
	got := decodeAs[mfaErrorJSON](r)
	if got.Error.MFA.Token == "" || got.Error.MFA.ExpiresIn != 300 || len(got.Error.MFA.Methods) == 0 {
		e.t.Fatalf("mfa = %+v", got.Error.MFA)
	}
	if strings.Contains(r.Body.String(), `"access"`) {
		e.t.Fatal("mfa_required must carry no tokens")
	}
	return got.Error.MFA.Token
}

func (e *testEnv) finish(token, ip string, proof map[string]string) *resp {
	e.t.Helper()
	body := map[string]string{"mfa_token": token}
	for k, v := range proof {
		body[k] = v
	}
	return e.do(req{method: "POST", path: "/api/token/mfa/", ip: ip, body: body})
}

func claimsOf(t testing.TB, tok string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTOTPEnrollmentAndLogin(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	pwd := claimsOf(t, u.access)
	if amr, _ := json.Marshal(pwd["amr"]); string(amr) != `["pwd"]` || pwd["auth_time"] == nil {
		t.Fatalf("password login claims amr=%s auth_time=%v", amr, pwd["auth_time"])
	}
	// Started but not confirmed: the password alone still signs in.
	e.do(req{method: "POST", path: "/api/me/mfa/totp/", auth: u.bearer(), body: map[string]string{"current_password": u.password}}).
		status(http.StatusCreated)
	e.login(u)
	a, _ := e.enroll(u)
	e.do(req{method: "POST", path: "/api/me/mfa/totp/", auth: u.bearer(), body: map[string]string{"current_password": u.password}}).
		errorCode(http.StatusConflict, "conflict")

	tok := decodeAs[tokenPairJSON](e.finish(e.passwordStep(u, ""), "", map[string]string{"code": a.fresh()}).status(http.StatusOK))
	c := claimsOf(t, tok.Access)
	if amr, _ := json.Marshal(c["amr"]); string(amr) != `["pwd","otp","mfa"]` {
		t.Fatalf("amr = %s", amr)
	}
	if at, ok := c["auth_time"].(float64); !ok || time.Since(time.Unix(int64(at), 0)) > time.Minute {
		t.Fatalf("auth_time = %v", c["auth_time"])
	}
	// A refresh keeps how the user signed in.
	ref := decodeAs[tokenRefreshJSON](e.do(req{method: "POST", path: "/api/token/refresh/", body: map[string]string{"refresh": tok.Refresh}}).status(http.StatusOK))
	if amr, _ := json.Marshal(claimsOf(t, ref.Access)["amr"]); string(amr) != `["pwd","otp","mfa"]` {
		t.Fatalf("refreshed amr = %s", amr)
	}
	// The secret is stored sealed, never in clear.
	conn, err := pgx.Connect(context.Background(), e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var sealed []byte
	if err := conn.QueryRow(context.Background(), `SELECT secret FROM mfa_totp WHERE user_id = $1`, u.id).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), a.secret) || len(sealed) < 28 {
		t.Fatalf("secret stored in clear or not sealed: %q", sealed)
	}
}

func TestTOTPBadInput(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	e.do(req{method: "POST", path: "/api/me/mfa/totp/confirm/", auth: u.bearer(), body: map[string]string{"code": "123456"}}).
		errorCode(http.StatusConflict, "conflict")
	a, _ := e.enroll(u)
	tok := e.passwordStep(u, "")
	e.finish(tok, "", nil).fieldError("code")
	e.finish(tok, "", map[string]string{"code": "1", "recovery_code": "x"}).fieldError("recovery_code")
	e.finish(tok, "", map[string]string{"code": strings.Repeat("9", 65)}).fieldError("code")
	e.finish(tok, "", map[string]string{"code": "12 34 56"}).errorCode(http.StatusUnauthorized, "authentication_failed")
	e.finish(tok, "", map[string]string{"code": "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"}).errorCode(http.StatusUnauthorized, "authentication_failed")
	e.do(req{method: "POST", path: "/api/token/mfa/", body: `{"mfa_token": 5, "code": "1"}`}).fieldError("mfa_token")
	e.do(req{method: "POST", path: "/api/token/mfa/", body: `{"mfa_token": "x", "code": "1", "extra": 1}`}).fieldError("extra")
	e.finish("garbage", "", map[string]string{"code": a.code(0)}).errorCode(http.StatusUnauthorized, "authentication_failed")
	e.do(req{method: "DELETE", path: "/api/me/mfa/totp/", auth: u.bearer(), body: map[string]string{"current_password": u.password}}).fieldError("code")
}

// TestTOTPReplayAndSkew: codes two steps off are refused, one step ahead
// is accepted, and a code never works twice, nor one older than the last
// used (auth's TestCheckTOTP covers one step behind, with a fixed clock).
func TestTOTPReplayAndSkew(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	a, _ := e.enroll(u)
	e.finish(e.passwordStep(u, ""), "", map[string]string{"code": a.code(-2)}).errorCode(http.StatusUnauthorized, "authentication_failed")
	e.finish(e.passwordStep(u, ""), "", map[string]string{"code": a.code(2)}).errorCode(http.StatusUnauthorized, "authentication_failed")
	// The confirmation's code is dead.
	used, _ := auth.TOTPCode(a.secret, a.last)
	e.finish(e.passwordStep(u, ""), "", map[string]string{"code": used}).errorCode(http.StatusUnauthorized, "authentication_failed")
	// One step ahead: accepted, once; then the current step, older than
	// the last used, is refused too.
	ahead := a.code(1)
	e.finish(e.passwordStep(u, ""), "", map[string]string{"code": ahead}).status(http.StatusOK)
	e.finish(e.passwordStep(u, ""), "", map[string]string{"code": ahead}).errorCode(http.StatusUnauthorized, "authentication_failed")
	cur, _ := auth.TOTPCode(a.secret, auth.TOTPStep(time.Now()))
	e.finish(e.passwordStep(u, ""), "", map[string]string{"code": cur}).errorCode(http.StatusUnauthorized, "authentication_failed")
}

func TestRecoveryCodes(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	a, codes := e.enroll(u)
	e.finish(e.passwordStep(u, ""), "", map[string]string{"recovery_code": strings.ToUpper(codes[0])}).status(http.StatusOK)
	e.finish(e.passwordStep(u, ""), "", map[string]string{"recovery_code": codes[0]}).errorCode(http.StatusUnauthorized, "authentication_failed")
	// Regenerated: the old ones die, the new ones work.
	fresh := decodeAs[recoveryCodesJSON](e.do(req{method: "POST", path: "/api/me/mfa/recovery-codes/", auth: u.bearer(),
		body: map[string]string{"current_password": u.password, "code": a.fresh()}}).status(http.StatusOK))
	e.finish(e.passwordStep(u, ""), "", map[string]string{"recovery_code": codes[1]}).errorCode(http.StatusUnauthorized, "authentication_failed")
	e.finish(e.passwordStep(u, ""), "", map[string]string{"recovery_code": fresh.RecoveryCodes[0]}).status(http.StatusOK)
	e.assertAudited(u, "recovery_code_used", "recovery_codes_regenerated", "mfa_enrolled")
}

// assertAudited waits until u's security history holds each event.
func (e *testEnv) assertAudited(u *user, events ...string) {
	e.t.Helper()
	waitFor(e.t, func() bool {
		body := e.do(req{method: "GET", path: "/api/me/events/?limit=100", auth: u.bearer()}).status(http.StatusOK).Body.String()
		for _, ev := range events {
			if !strings.Contains(body, `"event":"`+ev+`"`) {
				return false
			}
		}
		return true
	}, "events "+strings.Join(events, ", "))
}

func TestMFATokenRules(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	a, codes := e.enroll(u)
	// Five tries, then dead even with the right code.
	tok := e.passwordStep(u, "")
	for range 5 {
		e.finish(tok, "", map[string]string{"code": a.wrong()}).errorCode(http.StatusUnauthorized, "authentication_failed")
	}
	e.finish(tok, "", map[string]string{"code": a.code(0)}).errorCode(http.StatusUnauthorized, "authentication_failed")
	// Works once.
	tok = e.passwordStep(u, "")
	e.finish(tok, "", map[string]string{"recovery_code": codes[0]}).status(http.StatusOK)
	e.finish(tok, "", map[string]string{"recovery_code": codes[1]}).errorCode(http.StatusUnauthorized, "authentication_failed")
	// Expires.
	tok = e.passwordStep(u, "")
	conn, err := pgx.Connect(context.Background(), e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `UPDATE mfa_tokens SET expires_at = now() - interval '1 second'
		WHERE token_hash = $1`, auth.HashSecret(tok)); err != nil {
		t.Fatal(err)
	}
	e.finish(tok, "", map[string]string{"recovery_code": codes[1]}).errorCode(http.StatusUnauthorized, "authentication_failed")
	// The code was not spent by the refused try.
	e.finish(e.passwordStep(u, ""), "", map[string]string{"recovery_code": codes[1]}).status(http.StatusOK)
}

func TestWrongCodesAreThrottledLikePasswords(t *testing.T) {
	e := newEnv(t, map[string]string{"RATE_LIMIT_LOGIN": "1000/minute", "RATE_LIMIT_LOGIN_FAILURES": "3/minute"})
	u := e.newUser()
	a, _ := e.enroll(u)
	const ip = "10.200.0.1"
	tok := e.passwordStep(u, ip)
	for range 3 {
		e.finish(tok, ip, map[string]string{"code": a.wrong()}).errorCode(http.StatusUnauthorized, "authentication_failed")
	}
	// The failures of this address for this username are spent: even the
	// right code, and even the right password, wait.
	r := e.finish(e.passwordStep(u, "10.200.0.2"), ip, map[string]string{"code": a.code(0)})
	r.errorCode(http.StatusTooManyRequests, "throttled")
	if r.Header().Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	e.do(req{method: "POST", path: "/api/token/", ip: ip, body: map[string]string{"username": u.username, "password": u.password}}).
		errorCode(http.StatusTooManyRequests, "throttled")
	// Another address is not locked out.
	e.finish(e.passwordStep(u, "10.200.0.3"), "10.200.0.3", map[string]string{"code": a.fresh()}).status(http.StatusOK)
}

func TestStepUp(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	a, codes := e.enroll(u)
	// The session from before enrollment used the password alone.
	key := func(body map[string]string) *resp {
		b := map[string]string{"name": "k", "current_password": u.password}
		for k, v := range body {
			b[k] = v
		}
		return e.do(req{method: "POST", path: "/api/keys/", auth: u.bearer(), body: b})
	}
	r := key(nil)
	r.errorCode(http.StatusUnauthorized, "mfa_required")
	if wa := r.Header().Get("WWW-Authenticate"); !strings.Contains(wa, `error="insufficient_user_authentication"`) {
		t.Fatalf("WWW-Authenticate = %q", wa)
	}
	key(map[string]string{"code": a.wrong()}).errorCode(http.StatusUnauthorized, "authentication_failed")
	key(map[string]string{"code": a.fresh()}).status(http.StatusCreated)
	key(map[string]string{"recovery_code": codes[0]}).status(http.StatusCreated)
	key(map[string]string{"current_password": "wrong-password-123", "code": a.code(0)}).errorCode(http.StatusUnauthorized, "authentication_failed")

	pw := func(body map[string]string) *resp {
		b := map[string]string{"current_password": u.password, "new_password": "Another-sturdy-phrase-43"}
		for k, v := range body {
			b[k] = v
		}
		return e.do(req{method: "POST", path: "/api/me/password/", auth: u.bearer(), body: b})
	}
	pw(nil).errorCode(http.StatusUnauthorized, "mfa_required")
	pw(map[string]string{"code": a.fresh()}).status(http.StatusNoContent)
	u.password = "Another-sturdy-phrase-43"

	// A session that used the second factor counts for ten minutes.
	tok := decodeAs[tokenPairJSON](e.finish(e.passwordStep(u, ""), "", map[string]string{"code": a.fresh()}).status(http.StatusOK))
	u.access = tok.Access
	key(nil).status(http.StatusCreated)
}

func TestAdminResetsSecondFactor(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	a, _ := e.enroll(u)
	path := "/api/admin/users/" + u.id + "/mfa/"
	other := e.newUser()
	e.do(req{method: "DELETE", path: path, auth: other.bearer()}).errorCode(http.StatusForbidden, "permission_denied")
	admin := e.newAdmin()
	e.do(req{method: "DELETE", path: "/api/admin/users/00000000-0000-0000-0000-000000000000/mfa/", auth: admin.bearer()}).
		errorCode(http.StatusNotFound, "not_found")
	e.do(req{method: "DELETE", path: "/api/admin/users/nope/mfa/", auth: admin.bearer()}).errorCode(http.StatusNotFound, "not_found")
	pending := e.passwordStep(u, "")
	e.do(req{method: "DELETE", path: path, auth: admin.bearer()}).status(http.StatusNoContent)
	e.login(u) // the password alone again
	// A login waiting for its second factor died with it.
	e.finish(pending, "", map[string]string{"code": a.fresh()}).errorCode(http.StatusUnauthorized, "authentication_failed")
	e.assertAudited(u, "mfa_reset")
}

func TestUserRemovesSecondFactor(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	a, _ := e.enroll(u)
	e.do(req{method: "DELETE", path: "/api/me/mfa/totp/", auth: u.bearer(),
		body: map[string]string{"current_password": u.password, "code": a.wrong()}}).errorCode(http.StatusUnauthorized, "authentication_failed")
	e.do(req{method: "DELETE", path: "/api/me/mfa/totp/", auth: u.bearer(),
		body: map[string]string{"current_password": u.password, "code": a.fresh()}}).status(http.StatusNoContent)
	e.login(u)
	e.do(req{method: "DELETE", path: "/api/me/mfa/totp/", auth: u.bearer(),
		body: map[string]string{"current_password": u.password, "code": "123456"}}).errorCode(http.StatusNotFound, "not_found")
	e.assertAudited(u, "mfa_removed")
}

// TestTOTPUnderARetiredKey: a secret sealed under a key the server no
// longer holds cannot be checked. The code is answered 503, not counted
// as wrong, and the log names the key and the fix; recovery codes still
// sign in.
func TestTOTPUnderARetiredKey(t *testing.T) {
	oldKey, newKey := strings.Repeat("11", 32), strings.Repeat("22", 32)
	e := newEnv(t, map[string]string{"MFA_ENCRYPTION_KEY": oldKey})
	u := e.newUser()
	a, codes := e.enroll(u)
	rotated := e.secondInstance(t, map[string]string{"MFA_ENCRYPTION_KEY": newKey})
	token := rotated.passwordStep(u, "")
	rotated.finish(token, "", map[string]string{"code": a.fresh()}).errorCode(http.StatusServiceUnavailable, "service_unavailable")
	if log := rotated.logBuf.String(); !strings.Contains(log, "a TOTP secret cannot be opened") || !strings.Contains(log, "MFA_PREVIOUS_ENCRYPTION_KEYS") {
		t.Fatalf("the log does not say which key is missing and how to fix it:\n%s", log)
	}
	rotated.finish(token, "", map[string]string{"recovery_code": codes[0]}).status(http.StatusOK)
	// With the old key kept as a previous one, codes work again.
	kept := e.secondInstance(t, map[string]string{"MFA_ENCRYPTION_KEY": newKey, "MFA_PREVIOUS_ENCRYPTION_KEYS": oldKey})
	kept.finish(kept.passwordStep(u, ""), "", map[string]string{"code": a.fresh()}).status(http.StatusOK)
}
