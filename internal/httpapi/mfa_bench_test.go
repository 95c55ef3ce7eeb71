package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/taskmanager/internal/auth"
)

// BenchmarkTokenMFA measures POST /api/token/mfa/ with a TOTP code: the
// second step of a login, through the whole handler chain (the mfa_token
// try, the user, the failed-login budget, the sealed secret opened, the
// code checked and its step spent, the session opened and signed). Each
// iteration gets a fresh mfa_token and the user's last step is set back,
// outside the timer: a code works once, so one user logs in once a step.
func BenchmarkTokenMFA(b *testing.B) {
	e := newEnv(b, map[string]string{"RATE_LIMIT_LOGIN": "1000000/second"})
	u := e.newUser()
	a, _ := e.enroll(u)
	uid := mustUUID(b, u.id)
	conn, err := pgx.Connect(context.Background(), e.dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		token, hash := auth.NewMFAToken()
		if err := e.db.MFA().CreateMFAToken(ctx, hash, uid, time.Now().Add(time.Minute)); err != nil {
			b.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `UPDATE mfa_totp SET last_step = 0 WHERE user_id = $1`, uid); err != nil {
			b.Fatal(err)
		}
		code, _ := auth.TOTPCode(a.secret, auth.TOTPStep(time.Now()))
		body, _ := json.Marshal(map[string]string{"mfa_token": token, "code": code})
		r := httptest.NewRequest("POST", "/api/token/mfa/", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/json")
		r.RemoteAddr = "192.0.2.7:1234"
		w := httptest.NewRecorder()
		b.StartTimer()
		e.srv.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status = %d: %s", w.Code, w.Body)
		}
	}
}
