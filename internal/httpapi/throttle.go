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

	"github.com/acme/taskmanager/internal/config"
	"github.com/acme/taskmanager/internal/ratelimit"
	"github.com/acme/taskmanager/internal/task"
)

// throttle holds the budgets: anonymous callers per IP, users per user,
// and the stricter scoped ones of the credential endpoints, which replace
// the general budget there (as DRF's ScopedRateThrottle does).
type throttle struct {
	anon, user                *ratelimit.Limiter
	login, loginUser          *ratelimit.Limiter
	register, tokens, keyMint *ratelimit.Limiter
}

func newThrottle(cfg *config.Config, store func(window time.Duration) ratelimit.Store) *throttle {
	if store == nil {
		store = func(w time.Duration) ratelimit.Store { return ratelimit.NewLocal(w) }
	}
	limiter := func(name string, r config.Rate) *ratelimit.Limiter {
		return ratelimit.New(name, r.Limit, r.Window, store(r.Window))
	}
	return &throttle{
		anon:      limiter("anon", cfg.RateAnon),
		user:      limiter("user", cfg.RateUser),
		login:     limiter("login", cfg.RateLogin),
		loginUser: limiter("login_username", cfg.RateLogin),
		register:  limiter("register", cfg.RateRegister),
		tokens:    limiter("token", cfg.RateToken),
		keyMint:   limiter("key_create", cfg.RateKeyCreate),
	}
}

// middleware counts every request against one budget. It runs after
// authentication has named the caller and before any route requires it, so
// floods of anonymous or badly authenticated requests are throttled too.
func (t *throttle) middleware(s *Server) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			lim, key := t.pick(r)
			limited, err := take(w, r, lim, key)
			if err != nil {
				s.error(w, r, err)
				return
			}
			if limited {
				s.securityEvent(r, "throttled", "policy", lim.Name)
				s.error(w, r, task.Errorf(task.ETHROTTLED, "Request was throttled."))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (t *throttle) pick(r *http.Request) (*ratelimit.Limiter, string) {
	ri := info(r.Context())
	ip := bucketIP(ri.clientIP)
	id := task.IdentityFromContext(r.Context())
	if r.Method == http.MethodPost {
		switch routePath(r) {
		case "/api/token":
			return t.login, ip
		case "/api/register":
			return t.register, ip
		case "/api/token/refresh", "/api/token/verify", "/api/token/blacklist":
			return t.tokens, ip
		case "/api/keys":
			if id != nil {
				return t.keyMint, id.UserID.String()
			}
		}
	}
	if id != nil {
		return t.user, id.UserID.String()
	}
	return t.anon, ip
}

// take counts one request for key against lim and sets the rate-limit
// headers, the X-RateLimit set and the IETF draft-10 fields; it reports
// whether the request is over the limit.
func take(w http.ResponseWriter, r *http.Request, lim *ratelimit.Limiter, key string) (bool, error) {
	d, err := lim.Take(r.Context(), key)
	if err != nil {
		return false, err
	}
	reset := seconds(d.Reset)
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(d.Reset).Unix(), 10))
	h.Set("RateLimit-Policy", fmt.Sprintf(`"%s";q=%d;w=%d`, lim.Name, lim.Limit, int(lim.Window.Seconds())))
	h.Set("RateLimit", fmt.Sprintf(`"%s";r=%d;t=%d`, lim.Name, d.Remaining, reset))
	if !d.Allowed {
		h.Set("Retry-After", strconv.Itoa(max(seconds(d.RetryAfter), 1)))
	}
	return !d.Allowed, nil
}

// seconds rounds up: a client told to wait 0 s would retry at once.
func seconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

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
