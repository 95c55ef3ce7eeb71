package httpapi

import (
	"fmt"
	"net/http"
	"testing"
)

// BenchmarkOAuthTokenList compares GET /api/tasks/ (20 of 50 tasks) with
// an OAuth access token against the same request with our own access
// token, alternating (the target: a ratio within 5%): with the
// RSA key alone (OAuth tokens RS256, ours HS256), and with an Ed25519
// key in the ring (both EdDSA).
func BenchmarkOAuthTokenList(b *testing.B) {
	for _, ring := range []string{"rs256", "eddsa"} {
		b.Run(ring, func(b *testing.B) {
			env := map[string]string{"RATE_LIMIT_USER": "1000000/second"}
			if ring == "eddsa" {
				env["JWT_PRIVATE_KEY_FILE"], _, _ = writeKeys(b)
				env["JWT_SIGNING_KEY"] = ""
			}
			o := newOAuthEnv(b, env)
			u := o.newUser()
			for i := range 50 {
				o.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": fmt.Sprintf("Task %d", i)}}).status(http.StatusCreated)
			}
			tok := o.codeFlow(b, o.config(o.register(b, nil), "tasks:read"), u)
			auths := [2]string{"Bearer " + tok.AccessToken, u.bearer()}
			alternate(b, [2]string{"oauth", "ours"}, "/api/tasks/", func(i int) (http.Handler, string) { return o.srv, auths[i] })
		})
	}
}
