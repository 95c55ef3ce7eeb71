package httpapi

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/acme/taskmanager/internal/config"
	"github.com/acme/taskmanager/internal/metrics"
	"github.com/acme/taskmanager/internal/ratelimit"
	"github.com/acme/taskmanager/internal/task"
)

// throttle holds the budgets: anonymous callers per IP, users per user,
// and the stricter scoped ones of the credential endpoints, which replace
// the general budget there (as DRF's ScopedRateThrottle does). Which
// budget a route spends is declared in the route table (see rate).
type throttle struct {
	anon, user                budget
	login                     *ratelimit.Limiter // every /api/token/ request, per IP
	loginPair                 *ratelimit.Limiter // failed password checks per (username, IP)
	loginUsername             *ratelimit.Limiter // failed password checks per username, from any IP
	register, tokens, keyMint *ratelimit.Limiter
	events                    *recent[time.Time] // client and budget -> the window of its last logged refusal
	// decisions are the counters of each limiter's decisions, [allowed,
	// throttled], resolved when the limiter is built.
	decisions map[*ratelimit.Limiter][2]prometheus.Counter
}

// rate names the budget a route spends, on its line of the route table.
// The zero rate declares nothing, and handle refuses to register a route
// with it: a route that quietly fell back to the general budget would
// leave a credential endpoint with the loose limit.
type rate int

const (
	_             rate = iota
	generalRate        // the caller's own: per user when signed in, else per client IP
	loginRate          // every login attempt, per client IP (failures are counted apart, see attempt)
	registerRate       // per client IP
	tokenRate          // refresh, verify, blacklist: per client IP
	keyCreateRate      // per user; an anonymous caller spends the general budget
)

// scope is what a route of rate rt counts against: its own limit (nil for
// the general budget), and whether that limit counts signed-in callers per
// user (falling back to the general budget for the others) rather than
// every caller per client IP. It is resolved once, when the route is
// registered, so a request pays no lookup.
func (t *throttle) scope(rt rate) (own budget, perUser bool) {
	switch rt {
	case generalRate:
		return nil, false
	case loginRate:
		return budget{t.login}, false
	case registerRate:
		return budget{t.register}, false
	case tokenRate:
		return budget{t.tokens}, false
	case keyCreateRate:
		return budget{t.keyMint}, true
	}
	panic(fmt.Sprintf("httpapi: route registered without a rate budget (rate %d)", rt))
}

// budget is a short burst limit, optionally backed by a long sustained
// one; a request must fit both.
type budget []*ratelimit.Limiter

func newThrottle(rates Rates, store ratelimit.Stores, m *metrics.Metrics) *throttle {
	decisions := map[*ratelimit.Limiter][2]prometheus.Counter{}
	limiter := func(name string, r config.Rate) *ratelimit.Limiter {
		l := ratelimit.New(name, r.Limit, r.Window, store(r.Window))
		decisions[l] = [2]prometheus.Counter{m.Decision(name, true), m.Decision(name, false)}
		return l
	}
	withSustained := func(name string, burst config.Rate, sustained *config.Rate) budget {
		b := budget{limiter(name, burst)}
		if sustained != nil {
			b = append(b, limiter(name+"_sustained", *sustained))
		}
		return b
	}
	return &throttle{
		anon:          withSustained("anon", rates.Anon, rates.AnonSustained),
		user:          withSustained("user", rates.User, rates.UserSustained),
		login:         limiter("login", rates.Login),
		loginPair:     limiter("login_failures", rates.LoginFailures),
		loginUsername: limiter("login_username", rates.LoginUsername),
		register:      limiter("register", rates.Register),
		tokens:        limiter("token", rates.Token),
		keyMint:       limiter("key_create", rates.KeyCreate),
		events:        newRecent[time.Time](10000, 24*time.Hour), // a day outlasts any budget's window
		decisions:     decisions,
	}
}

// count feeds the decisions of one request to the throttling metrics.
func (t *throttle) count(lim *ratelimit.Limiter, d ratelimit.Decision) {
	c := t.decisions[lim]
	if d.Allowed {
		c[0].Inc()
	} else {
		c[1].Inc()
	}
}

// limit counts every request of a route of rate rt against one budget. It
// runs after authentication has named the caller and before any route
// requires it, so floods of anonymous or badly authenticated requests are
// throttled too.
func (s *Server) limit(rt rate) func(http.Handler) http.Handler {
	t := s.throttle
	own, perUser := t.scope(rt)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, key := t.pick(r, own, perUser)
			sp := info(r.Context()).anonSpent
			if sp == nil || (sp.over == nil && !b.is(t.anon)) {
				// Not counted yet, or counted against the anonymous budget
				// for a credential that turned out to be good.
				got, err := b.take(r.Context(), key)
				if err != nil {
					s.error(w, r, err)
					return
				}
				for i, d := range got.taken {
					t.count(b[i], d)
				}
				sp = &got
			}
			if sp.over != nil {
				s.throttled(r, sp)
				s.error(w, r, refusal{sp})
				return
			}
			sp.headers(w)
			next.ServeHTTP(w, r)
		})
	}
}

// pick is the budget and key of one request to a route whose scope is own
// and perUser.
func (t *throttle) pick(r *http.Request, own budget, perUser bool) (budget, string) {
	id := task.IdentityFromContext(r.Context())
	switch {
	case own != nil && !perUser:
		return own, bucketIP(info(r.Context()).clientIP)
	case id == nil:
		return t.anon, bucketIP(info(r.Context()).clientIP)
	case own != nil:
		return own, throttleKey(id)
	}
	return t.user, throttleKey(id)
}

// throttleKey is whom an identified request counts against: its user, or
// an OAuth client acting for itself. Client-credentials tokens have no
// user, so keyed by user id they would all share one budget, and one
// client could spend every other client's.
func throttleKey(id *task.Identity) string {
	if id.UserID == uuid.Nil && id.ClientID != "" {
		return "client:" + id.ClientID
	}
	return id.UserID.String()
}

// is reports whether b and o are the same budget.
func (b budget) is(o budget) bool { return len(b) > 0 && len(o) > 0 && b[0] == o[0] }

// spent is one request counted against a budget: the limit it is over (nil
// when it fits), the tightest decision, and what the rate-limit headers say.
type spent struct {
	key    string
	over   *ratelimit.Limiter
	tight  ratelimit.Decision
	limits []*ratelimit.Limiter // as far as counting went, in order
	taken  []ratelimit.Decision // what each of limits decided
}

// take counts one request for key against each limit of the budget, in
// order: the X-RateLimit set describes the tightest limit, the IETF
// draft-10 fields all of them. (A request refused by a later limit stays
// counted by the earlier ones, as with DRF's throttle classes.)
func (b budget) take(ctx context.Context, key string) (spent, error) {
	sp := spent{key: key}
	for i, lim := range b {
		d, err := lim.Take(ctx, key)
		if err != nil {
			return sp, err
		}
		sp.limits, sp.taken = b[:i+1], append(sp.taken, d)
		if i == 0 || d.Remaining < sp.tight.Remaining {
			sp.tight = d
		}
		if !d.Allowed {
			sp.tight, sp.over = d, lim
			break
		}
	}
	return sp, nil
}

// refund gives back a request take counted, as far as it counted it.
func (b budget) refund(ctx context.Context, sp *spent) {
	for i, d := range sp.taken {
		_ = b[i].Refund(ctx, sp.key, d) // a store failure costs the client one request, no more
	}
}

// refused is a refusal by one limit, decided outside the middleware (the
// failed-login budgets).
func refused(lim *ratelimit.Limiter, key string, d ratelimit.Decision) *spent {
	return &spent{key: key, over: lim, tight: d, limits: []*ratelimit.Limiter{lim}, taken: []ratelimit.Decision{d}}
}

// The rate-limit headers (X-RateLimit-Limit, ..., RateLimit-Policy,
// RateLimit) spelled in Go's canonical form, which is how net/http sends
// them whatever the spelling: a key in another form is canonicalised into
// a new string on every Set.
const (
	headerLimit     = "X-Ratelimit-Limit"
	headerRemaining = "X-Ratelimit-Remaining"
	headerReset     = "X-Ratelimit-Reset"
	headerPolicy    = "Ratelimit-Policy"
	headerState     = "Ratelimit"
)

// headers sends the X-RateLimit set for the tightest decision, the
// draft-10 fields, and Retry-After when the request was refused. This is
// the one place that writes rate-limit headers: limit calls it for a
// request it lets through, the error writer for every 429 (a refusal).
func (sp *spent) headers(w http.ResponseWriter) {
	d := sp.tight
	h := w.Header()
	h.Set(headerLimit, strconv.Itoa(d.Limit))
	h.Set(headerRemaining, strconv.Itoa(d.Remaining))
	h.Set(headerReset, strconv.FormatInt(time.Now().Add(d.Reset).Unix(), 10))
	h.Set(headerPolicy, sp.fields(policyField))
	h.Set(headerState, sp.fields(stateField))
	if !d.Allowed {
		h.Set("Retry-After", strconv.Itoa(max(seconds(d.RetryAfter), 1)))
	}
}

// refusal is a 429 and what its rate-limit headers say, decided by limit
// or by the failed-login accounting: the error writer sends the headers,
// so neither middleware nor handlers write a refusal themselves.
type refusal struct{ *spent }

func (e refusal) Error() string { return "httpapi: over the " + e.over.Name + " budget" }
func (e refusal) Unwrap() error { return task.ErrThrottled }

// throttled logs the security event of a refusal once per client, budget
// and window: a flood of 429s is one episode, not a flood of log lines.
func (s *Server) throttled(r *http.Request, sp *spent) {
	key, window := sp.over.Name+"|"+sp.key, sp.tight.WindowStart()
	if logged, ok := s.throttle.events.get(key); ok && logged.Equal(window) {
		return
	}
	s.throttle.events.put(key, window)
	s.securityEvent(r, "throttled", "policy", sp.over.Name)
}

// policyField and stateField are one item of RateLimit-Policy and RateLimit.
// fields is one draft-10 header: field(limit, decision) for each limit
// counted, comma-separated. The fields are appended, not formatted, since
// every request sends two of these headers.
func (sp *spent) fields(field func([]byte, *ratelimit.Limiter, ratelimit.Decision) []byte) string {
	b := make([]byte, 0, 48*len(sp.limits))
	for i, l := range sp.limits {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = field(b, l, sp.taken[i])
	}
	return string(b)
}

// policyField is `"name";q=limit;w=window seconds`.
func policyField(b []byte, l *ratelimit.Limiter, _ ratelimit.Decision) []byte {
	b = strconv.AppendInt(append(append(append(b, '"'), l.Name...), `";q=`...), int64(l.Limit), 10)
	return strconv.AppendInt(append(b, ";w="...), int64(l.Window.Seconds()), 10)
}

// stateField is `"name";r=remaining;t=seconds to reset`.
func stateField(b []byte, l *ratelimit.Limiter, d ratelimit.Decision) []byte {
	b = strconv.AppendInt(append(append(append(b, '"'), l.Name...), `";r=`...), int64(d.Remaining), 10)
	return strconv.AppendInt(append(b, ";t="...), int64(seconds(d.Reset)), 10)
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
