package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/httprate"

	"github.com/acme/taskmanager/internal/config"
	"github.com/acme/taskmanager/internal/task"
)

// limiter is one named budget, counted by httprate in windows aligned to
// the wall clock.
type limiter struct {
	name string
	rate config.Rate
	rl   *httprate.RateLimiter
}

func newLimiter(name string, rate config.Rate) *limiter {
	// An explicit counter makes httprate align windows to the wall clock
	// (its default offsets them per process), so every instance agrees.
	counter := httprate.NewLocalLimitCounter(rate.Window)
	return &limiter{name: name, rate: rate,
		rl: httprate.NewRateLimiter(rate.Limit, rate.Window, httprate.WithLimitCounter(counter))}
}

// throttle holds the budgets: anonymous callers per IP, users per user,
// and the stricter ones of the credential endpoints.
type throttle struct {
	anon, user, login, loginUser, register *limiter
}

func newThrottle(cfg *config.Config) *throttle {
	return &throttle{
		anon:      newLimiter("anon", cfg.RateAnon),
		user:      newLimiter("user", cfg.RateUser),
		login:     newLimiter("login", cfg.RateLogin),
		loginUser: newLimiter("login_username", cfg.RateLogin),
		register:  newLimiter("register", cfg.RateRegister),
	}
}

// middleware counts every request against one budget. It runs after
// authentication has named the caller and before any route requires it, so
// floods of anonymous or badly authenticated requests are throttled too.
func (t *throttle) middleware(s *Server) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			lim, key := t.pick(r)
			if lim.take(w, r, key) {
				s.securityEvent(r, "throttled", "policy", lim.name)
				s.error(w, r, task.Errorf(task.ETHROTTLED, "Request was throttled."))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (t *throttle) pick(r *http.Request) (*limiter, string) {
	ri := info(r.Context())
	ip := bucketIP(ri.clientIP)
	path := routePath(r)
	switch {
	case r.Method == http.MethodPost && path == "/api/token":
		return t.login, ip
	case r.Method == http.MethodPost && path == "/api/register":
		return t.register, ip
	}
	if id := task.IdentityFromContext(r.Context()); id != nil {
		return t.user, id.UserID.String()
	}
	return t.anon, ip
}

// take counts one request for key and sets the rate-limit headers; it
// reports whether the request is over the limit.
func (l *limiter) take(w http.ResponseWriter, r *http.Request, key string) bool {
	limited := l.rl.OnLimit(w, r, key)
	now := time.Now().UTC() // httprate compares window starts with ==, location included
	window := now.Truncate(l.rate.Window)
	reset := int(math.Ceil(window.Add(l.rate.Window).Sub(now).Seconds()))
	remaining, _ := strconv.Atoi(w.Header().Get("X-RateLimit-Remaining"))
	remaining = max(remaining, 0)
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	w.Header().Set("RateLimit-Policy", fmt.Sprintf(`"%s";q=%d;w=%d`, l.name, l.rate.Limit, int(l.rate.Window.Seconds())))
	w.Header().Set("RateLimit", fmt.Sprintf(`"%s";r=%d;t=%d`, l.name, remaining, reset))
	if limited {
		w.Header().Set("Retry-After", strconv.Itoa(l.retryAfter(key, now)))
	}
	return limited
}

// exceeded reports whether key has used its budget, without counting. It
// rounds the way httprate's OnLimit does, so both agree on the boundary.
func (l *limiter) exceeded(key string) bool {
	_, rate, err := l.rl.Status(key)
	return err == nil && int(math.Round(rate)) >= l.rate.Limit
}

// count adds one to key's budget.
func (l *limiter) count(key string) {
	now := time.Now().UTC() // httprate compares window starts with ==, location included
	_ = l.rl.Counter().IncrementBy(key, now.Truncate(l.rate.Window), 1)
}

// retryAfter is the wait until key may make a request again. httprate
// estimates the rate from this window's count plus the previous window's
// count weighted by how much of it still overlaps the sliding window, so
// the wait may end inside this window or inside the next one.
func (l *limiter) retryAfter(key string, now time.Time) int {
	w := l.rate.Window
	cur := now.Truncate(w)
	curCount, prevCount, err := l.rl.Counter().Get(key, cur, cur.Add(-w))
	if err != nil {
		return int(w.Seconds())
	}
	limit := float64(l.rate.Limit)
	// Allowed once round(prev*(1-d/w) + cur) + 1 <= limit, i.e. the
	// weighted sum drops below limit-0.5.
	free := func(prev, cur float64) (time.Duration, bool) {
		if cur > limit-0.5 {
			return 0, false
		}
		if prev == 0 {
			return 0, true
		}
		d := float64(w) * (1 - (limit-0.5-cur)/prev)
		return time.Duration(max(d, 0)), true
	}
	at := cur.Add(w) // the next window start, with this window's count as "previous"
	if d, ok := free(float64(prevCount), float64(curCount)); ok {
		at = cur.Add(d)
	} else if d, ok := free(float64(curCount), 0); ok {
		at = cur.Add(w).Add(d)
	}
	return max(1, int(math.Ceil(at.Sub(now).Seconds())))
}

// bucketIP keys IPv6 clients by /64: one host usually owns the whole block.
func bucketIP(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.String()
}

func routePath(r *http.Request) string {
	if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePath != "" {
		return rctx.RoutePath
	}
	return strings.TrimSuffix(r.URL.Path, "/")
}
