package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/cors"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/task"
)

// reqInfo is what the middleware learns about a request, shared through
// the context so the access log can report it after the handler ran.
type reqInfo struct {
	id       string
	traceID  string // of a valid incoming W3C traceparent, else empty
	clientIP string
	secure   bool
	userID   string
	scheme   string
	authErr  error // why a presented credential was refused, or why the answer is 401; nil if neither
	// anonSpent is the anonymous budget, when checking the credential
	// already counted the request against it.
	anonSpent *spent
}

type reqInfoKey struct{}

func info(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

func authError(ctx context.Context) error { return info(ctx).authErr }

// MaxHeaderBytes is the most a request line and its headers may take
// together (the contract's 16 KiB). net/http's own limit (http.Server's
// MaxHeaderBytes, set to this) is looser: it adds 4 KiB of slack, and a
// kept-alive connection buffers 4 KiB more before the limit applies, so
// limitHeaders counts exactly.
const MaxHeaderBytes = 16 << 10

// limitHeaders answers 431 to a request whose head is over MaxHeaderBytes,
// before anything else looks at it, in net/http's own words.
func (s *Server) limitHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2 + len("Host: ") + len(r.Host) + 2
		for k, vs := range r.Header {
			for _, v := range vs {
				n += len(k) + 2 + len(v) + 2
			}
		}
		if n > MaxHeaderBytes {
			w.Header().Set("Connection", "close")
			http.Error(w, "431 Request Header Fields Too Large", http.StatusRequestHeaderFieldsTooLarge)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// saneRequestID accepts the ids proxies and clients commonly send (UUIDs,
// hex, dashed tokens) and nothing that could smuggle markup into logs.
var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// headerRequestID is X-Request-ID in Go's canonical form, as net/http sends
// it: Get and Set canonicalise any other spelling into a new string.
// "Traceparent" is canonical as written.
const headerRequestID = "X-Request-Id"

// requestID echoes a sane X-Request-ID or makes one, reads the trace id of
// a W3C traceparent, and resolves the client address once for everything
// after it.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(headerRequestID)
		if !saneRequestID.MatchString(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set(headerRequestID, id)
		ip, secure := s.clientAddr(r)
		ri := &reqInfo{id: id, traceID: traceID(r.Header.Get("Traceparent")), clientIP: ip, secure: secure}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri)))
	})
}

// traceID is the trace id of a W3C traceparent header
// (version-traceid-parentid-flags, lower-case hex), or "" when the header
// is absent or malformed: a bad one starts no trace, as the spec says.
func traceID(tp string) string {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' || tp[:2] == "ff" ||
		(tp[:2] == "00" && len(tp) != 55) || (len(tp) > 55 && tp[55] != '-') {
		return ""
	}
	id, zero := tp[3:35], true
	for _, part := range []string{tp[:2], id, tp[36:52], tp[53:55]} {
		for i := 0; i < len(part); i++ {
			if c := part[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return ""
			}
		}
	}
	for i := 0; i < len(id); i++ {
		zero = zero && id[i] == '0'
	}
	if zero || strings.Trim(tp[36:52], "0") == "" {
		return ""
	}
	return id
}

// accessLog writes one line per request and observes its duration in the
// metrics, labelled by the chi route pattern it matched (known once the
// handler ran), never the raw path. It never logs headers, bodies or
// query strings: they carry credentials and user data.
func (s *Server) accessLog(next http.Handler) http.Handler {
	m := s.deps.Metrics
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.Begin()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		took := time.Since(start)
		ri := info(r.Context())
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		if m != nil {
			m.ObserveRequest(r.Method, chi.RouteContext(r.Context()).RoutePattern(), status, took, ri.id, ri.traceID)
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(took.Microseconds())/1000),
			slog.Int("bytes", ww.BytesWritten()),
			slog.String("client_ip", ri.clientIP),
			slog.String("user_id", ri.userID),
			slog.String("auth", ri.scheme),
		}
		if ri.authErr != nil {
			// Why a credential was refused: the sentence the client got, and
			// a word to count by. Never the credential itself.
			attrs = append(attrs, slog.String("auth_error", task.ErrorMessage(ri.authErr)),
				slog.String("auth_reason", task.ErrorReason(ri.authErr)))
		}
		s.log.LogAttrs(r.Context(), levelFor(status), "request", attrs...)
	})
}

// recoverer turns a panic into the generic 500; the stack goes to the log.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			rec := recover()
			if rec == nil {
				return
			}
			if rec == http.ErrAbortHandler {
				panic(rec)
			}
			s.log.ErrorContext(r.Context(), "panic", "err", fmt.Sprint(rec), "stack", string(debug.Stack()))
			s.error(w, r, fmt.Errorf("httpapi: panic: %v", rec))
		}()
		next.ServeHTTP(w, r)
	})
}

// securityHeaders sets the headers every response carries.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if s.cfg.HSTSSeconds > 0 && info(r.Context()).secure {
			h.Set("Strict-Transport-Security", "max-age="+strconv.Itoa(s.cfg.HSTSSeconds)+"; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

// checkHost refuses a Host outside ALLOWED_HOSTS, so no link we build can
// point at a host the operator did not list. ".example.com" also allows its
// subdomains, as in Django. For an absolute-form request target
// (GET http://host/path) Go takes the host from the target, so a target
// naming another host is refused here too.
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r.Host) {
			s.error(w, r, task.Errorf(task.EBADREQUEST, "Invalid Host header."))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) hostAllowed(host string) bool {
	host = strings.ToLower(host)
	if h, port, err := net.SplitHostPort(host); err == nil {
		if _, perr := strconv.ParseUint(port, 10, 16); perr != nil {
			return false
		}
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" {
		return false
	}
	for _, allowed := range s.cfg.AllowedHosts {
		allowed = strings.Trim(strings.ToLower(allowed), "[]")
		if allowed == "*" || host == allowed || (strings.HasPrefix(allowed, ".") &&
			(host == allowed[1:] || strings.HasSuffix(host, allowed))) {
			return true
		}
	}
	return false
}

// absoluteURL is the URL clients should use for path and query: on
// PUBLIC_URL when it is set, else on the (allowed) Host of the request,
// with scheme (empty: the scheme the request came in with).
func (s *Server) absoluteURL(r *http.Request, scheme, path, rawQuery string) string {
	u := url.URL{Scheme: scheme, Host: r.Host, Path: path, RawQuery: rawQuery}
	if u.Scheme == "" {
		u.Scheme = "http"
		if info(r.Context()).secure {
			u.Scheme = "https"
		}
	}
	if p := s.cfg.PublicURL; p != nil {
		u.Scheme, u.Host = p.Scheme, p.Host
	}
	return u.String()
}

// redirectToHTTPS sends plain-HTTP requests a 308 to the same URL over
// https when SECURE_SSL_REDIRECT is on (308 keeps the method and body).
// Health probes are exempt: load balancers call them over plain HTTP.
func (s *Server) redirectToHTTPS(next http.Handler) http.Handler {
	if !s.cfg.SecureSSLRedirect {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := strings.TrimSuffix(r.URL.Path, "/"); info(r.Context()).secure || p == "/healthz" || p == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Location", s.absoluteURL(r, "https", r.URL.Path, r.URL.RawQuery))
		w.WriteHeader(http.StatusPermanentRedirect)
	})
}

// cors answers preflights itself, before authentication and throttling,
// and adds CORS headers to every answer for an allowed origin, errors too.
func (s *Server) cors() func(http.Handler) http.Handler {
	if len(s.cfg.CORSAllowedOrigins) == 0 && !s.cfg.CORSAllowAllOrigins {
		// go-chi/cors reads an empty list as "every origin"; no list means none.
		return func(next http.Handler) http.Handler { return next }
	}
	opts := cors.Options{
		AllowedOrigins: s.cfg.CORSAllowedOrigins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
		AllowedHeaders: []string{"Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key", "X-Request-ID"},
		ExposedHeaders: []string{"ETag", "Location", "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining",
			"X-RateLimit-Reset", "RateLimit", "RateLimit-Policy", "X-Request-ID", "Idempotent-Replayed"},
		MaxAge: 600,
	}
	if s.cfg.CORSAllowAllOrigins {
		opts.AllowedOrigins = nil
		opts.AllowOriginFunc = func(*http.Request, string) bool { return true }
	}
	return cors.Handler(opts)
}

// noStore keeps API answers, which carry credentials or user data, out of caches.
func (s *Server) noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// authenticate identifies the caller from the Authorization header. A bad
// credential leaves the request anonymous (for throttling) and marked with
// the reason, so a protected route answers invalid_token and says why; it
// never falls back to another identity. Any other failure (an unreachable
// database) stops the request.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values("Authorization")
		if len(values) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if len(values) > 1 {
			s.error(w, r, task.ErrTwoCredentials)
			return
		}
		ri := info(r.Context())
		id, err := s.identify(r.Context(), ri, values[0])
		switch {
		case err == nil:
			ri.userID, ri.scheme = id.UserID.String(), id.Scheme
			r = r.WithContext(task.NewContextWithIdentity(r.Context(), id))
		case task.ErrorCode(err) == task.EINVALIDTOKEN:
			ri.authErr = err
		default:
			s.error(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// credential is what an Authorization header presents.
type credential struct {
	bearer bool // a JWT access token; otherwise an API key
	value  string
}

// parseAuthorization reads "Bearer <jwt>", "Api-Key <key>" or "Token <key>"
// (schemes are case-insensitive, RFC 9110 11.1). A scheme we take with
// nothing after it is told apart from a scheme we do not take.
func parseAuthorization(header string) (credential, error) {
	scheme, value, _ := strings.Cut(strings.TrimSpace(header), " ")
	value = strings.TrimSpace(value)
	var c credential
	switch strings.ToLower(scheme) {
	case "bearer":
		c.bearer = true
	case "api-key", "token":
	default:
		return credential{}, task.ErrSchemeUnknown
	}
	switch {
	case value == "":
		return credential{}, task.ErrCredentialGone
	case strings.ContainsAny(value, " \t"):
		return credential{}, task.ErrSchemeUnknown
	}
	c.value = value
	return c, nil
}

// looksLikeJWT: three dot-separated parts, the first a base64url JSON object.
func looksLikeJWT(v string) bool {
	return strings.HasPrefix(v, "eyJ") && strings.Count(v, ".") == 2
}

// identify verifies the credential of an Authorization header. Each
// refusal is a distinct invalid_token error, so the client learns whether
// to fix the header, refresh, or sign in again.
func (s *Server) identify(ctx context.Context, ri *reqInfo, header string) (*task.Identity, error) {
	cred, err := parseAuthorization(header)
	switch {
	case err != nil:
		return nil, err
	case cred.bearer && strings.HasPrefix(cred.value, auth.KeyMarker):
		return nil, task.ErrKeyWrongScheme
	case !cred.bearer && looksLikeJWT(cred.value):
		return nil, task.ErrJWTWrongScheme
	case !cred.bearer:
		return s.identifyKey(ctx, ri, cred.value)
	case strings.Count(cred.value, ".") != 2:
		return nil, task.ErrTokenMalformed
	}
	if s.tokens.LooksLikeOAuth(cred.value) {
		return s.identifyOAuth(ctx, cred.value)
	}
	tok, err := s.checkAccess(ctx, cred.value)
	if err == task.ErrInvalidToken {
		return s.identifyOAuth(ctx, cred.value) // not ours: maybe an OAuth access token
	}
	if err != nil {
		return nil, err
	}
	return &task.Identity{UserID: tok.UserID, SessionID: tok.SessionID, Scheme: task.SchemeBearer,
		AuthTime: tok.AuthTime, AMR: tok.AMR}, nil
}

// checkAccess verifies an access token and that its session still lives.
func (s *Server) checkAccess(ctx context.Context, raw string) (*auth.Token, error) {
	tok, err := s.tokens.Verify(auth.Access, raw)
	if errors.Is(err, auth.ErrExpiredToken) {
		return nil, task.ErrTokenExpired
	}
	if err != nil {
		return nil, task.ErrInvalidToken
	}
	revoked, err := s.deps.Revocations.IsRevoked(ctx, tok.SessionID, tok.IssuedAt)
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, task.ErrTokenRevoked
	}
	return tok, nil
}

// identifyKey looks an API key up. Made-up keys are the cheap way to make
// us query the database, so a prefix that missed is remembered, and a key
// this instance has not seen work lately is counted against the client's
// anonymous budget before it is looked up: once that is spent, the lookup
// is skipped and the throttle answers 429 (the request was counted once,
// here). A key that turns out valid is given back its anonymous count and
// counted as usual, against its owner's budget.
func (s *Server) identifyKey(ctx context.Context, ri *reqInfo, key string) (*task.Identity, error) {
	prefix, ok := auth.ParseAPIKey(key)
	if !ok {
		return nil, task.ErrKeyMalformed
	}
	if _, missed := s.unknownKeys.get(prefix); missed {
		return nil, task.ErrKeyInvalid
	}
	if hash, known := s.knownKeys.get(prefix); !known || !auth.MatchAPIKey(key, hash) {
		sp, err := s.throttle.anon.take(ctx, bucketIP(ri.clientIP))
		if err != nil {
			return nil, err
		}
		ri.anonSpent = &sp
		if sp.over != nil {
			return nil, task.ErrKeyInvalid
		}
	}
	k, err := s.deps.Keys.FindKeyByPrefix(ctx, prefix)
	if task.ErrorCode(err) == task.ENOTFOUND {
		s.unknownKeys.put(prefix, struct{}{})
		return nil, task.ErrKeyInvalid
	}
	if err != nil {
		return nil, err
	}
	if !auth.MatchAPIKey(key, k.Hash) {
		return nil, task.ErrKeyInvalid
	}
	if ri.anonSpent != nil {
		s.throttle.anon.refund(ctx, ri.anonSpent)
		ri.anonSpent = nil
	}
	s.knownKeys.put(prefix, k.Hash)
	return &task.Identity{UserID: k.UserID, Scheme: task.SchemeAPIKey, Scopes: k.Scopes, KeyID: k.ID}, nil
}
