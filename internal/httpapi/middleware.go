package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

	"github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/cors"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/task"
)

// reqInfo is what the middleware learns about a request, shared through
// the context so the access log can report it after the handler ran.
type reqInfo struct {
	id         string
	clientIP   string
	secure     bool
	userID     string
	scheme     string
	authFailed bool // a credential was presented and rejected
}

type reqInfoKey struct{}

func info(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

func authFailed(ctx context.Context) bool { return info(ctx).authFailed }

// saneRequestID accepts the ids proxies and clients commonly send (UUIDs,
// hex, dashed tokens) and nothing that could smuggle markup into logs.
var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestID echoes a sane X-Request-ID or makes one, and resolves the
// client address once for everything after it.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if !saneRequestID.MatchString(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-ID", id)
		ip, secure := s.clientAddr(r)
		ri := &reqInfo{id: id, clientIP: ip, secure: secure}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri)))
	})
}

// accessLog writes one line per request. It never logs headers, bodies or
// query strings: they carry credentials and user data.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		ri := info(r.Context())
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		s.log.LogAttrs(r.Context(), levelFor(status), "request",
			slog.String("request_id", ri.id),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.Int("bytes", ww.BytesWritten()),
			slog.String("client_ip", ri.clientIP),
			slog.String("user_id", ri.userID),
			slog.String("auth", ri.scheme),
		)
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
			s.log.ErrorContext(r.Context(), "panic", "request_id", info(r.Context()).id,
				"err", fmt.Sprint(rec), "stack", string(debug.Stack()))
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

// checkHost refuses a Host outside ALLOWED_HOSTS (empty allows any), so
// links built from Host cannot point elsewhere. ".example.com" also allows
// its subdomains, as in Django.
func (s *Server) checkHost(next http.Handler) http.Handler {
	if len(s.cfg.AllowedHosts) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := strings.ToLower(r.Host)
		if h, port, err := net.SplitHostPort(host); err == nil {
			if _, perr := strconv.ParseUint(port, 10, 16); perr != nil {
				s.error(w, r, task.Errorf(task.EBADREQUEST, "Invalid Host header."))
				return
			}
			host = h
		}
		host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
		for _, allowed := range s.cfg.AllowedHosts {
			allowed = strings.ToLower(allowed)
			if allowed == "*" || host == allowed || (strings.HasPrefix(allowed, ".") &&
				(host == allowed[1:] || strings.HasSuffix(host, allowed))) {
				next.ServeHTTP(w, r)
				return
			}
		}
		s.error(w, r, task.Errorf(task.EBADREQUEST, "Invalid Host header."))
	})
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
		target := url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
		w.Header().Set("Location", target.String())
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
			"X-RateLimit-Reset", "RateLimit", "RateLimit-Policy", "X-Request-ID"},
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
// credential leaves the request anonymous (for throttling) and marked, so a
// protected route answers invalid_token; it never falls back to another
// identity. Any other failure (an unreachable database) stops the request.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get("Authorization")
		if header == "" {
			next.ServeHTTP(w, r)
			return
		}
		id, err := s.identify(r.Context(), header)
		ri := info(r.Context())
		switch {
		case err == nil:
			ri.userID, ri.scheme = id.UserID.String(), id.Scheme
			r = r.WithContext(task.NewContextWithIdentity(r.Context(), id))
		case task.ErrorCode(err) == task.EINVALIDTOKEN:
			ri.authFailed = true
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
// (schemes are case-insensitive, RFC 9110 11.1).
func parseAuthorization(header string) (credential, bool) {
	scheme, value, ok := strings.Cut(strings.TrimSpace(header), " ")
	value = strings.TrimSpace(value)
	if !ok || value == "" || strings.ContainsAny(value, " \t") {
		return credential{}, false
	}
	switch strings.ToLower(scheme) {
	case "bearer":
		return credential{bearer: true, value: value}, true
	case "api-key", "token":
		return credential{value: value}, true
	}
	return credential{}, false
}

func (s *Server) identify(ctx context.Context, header string) (*task.Identity, error) {
	cred, ok := parseAuthorization(header)
	if !ok {
		return nil, task.ErrInvalidToken
	}
	if !cred.bearer {
		return s.identifyKey(ctx, cred.value)
	}
	tok, err := s.tokens.Verify(auth.Access, cred.value)
	if err != nil {
		return nil, task.ErrInvalidToken
	}
	revoked, err := s.deps.Revocations.IsRevoked(ctx, tok.SessionID)
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, task.ErrInvalidToken
	}
	return &task.Identity{UserID: tok.UserID, SessionID: tok.SessionID, Scheme: task.SchemeBearer}, nil
}

func (s *Server) identifyKey(ctx context.Context, key string) (*task.Identity, error) {
	prefix, ok := auth.ParseAPIKey(key)
	if !ok {
		return nil, task.ErrInvalidToken
	}
	if s.unknownKeys.has(prefix) {
		return nil, task.ErrInvalidToken
	}
	k, err := s.deps.Keys.FindKeyByPrefix(ctx, prefix)
	if task.ErrorCode(err) == task.ENOTFOUND {
		s.unknownKeys.add(prefix)
		return nil, task.ErrInvalidToken
	}
	if err != nil {
		return nil, err
	}
	if !auth.MatchAPIKey(key, k.Hash) {
		return nil, task.ErrInvalidToken
	}
	if err := s.deps.Keys.TouchKey(ctx, k.ID); err != nil {
		return nil, err
	}
	return &task.Identity{UserID: k.UserID, Scheme: task.SchemeAPIKey, Scopes: k.Scopes}, nil
}
