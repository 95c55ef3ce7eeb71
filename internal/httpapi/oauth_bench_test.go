package httpapi

import (
	"fmt"
	"net/http"
	"testing"
)

// BenchmarkOAuthTokenList compares GET /api/tasks/ (20 of 50 tasks) with
// an OAuth access token against the same request with our own access
// token, alternating (the target: a ratio within 5%).
func BenchmarkOAuthTokenList(b *testing.B) {
	o := newOAuthEnv(b, map[string]string{"RATE_LIMIT_USER": "1000000/second"})
	u := o.newUser()
	for i := range 50 {
		o.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": fmt.Sprintf("Task %d", i)}}).status(http.StatusCreated)
	}
	tok := o.codeFlow(b, o.config(o.register(b, nil), "tasks:read"), u)
	auths := [2]string{"Bearer " + tok.AccessToken, u.bearer()}
	alternate(b, [2]string{"oauth", "ours"}, "/api/tasks/", func(i int) (http.Handler, string) { return o.srv, auths[i] })
}
