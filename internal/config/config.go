// Package config reads the process configuration from the environment, once,
// and reports every problem on its own line.
package config

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of the server. Read it with Load.
type Config struct {
	Env        string // "development" or "production"
	ListenAddr string

	DatabaseURL    string
	RedisURL       string
	RedisKeyPrefix string

	JWTSigningKey          []byte
	JWTPrivateKey          ed25519.PrivateKey  // from JWT_PRIVATE_KEY_FILE; signs with EdDSA when set
	JWTPreviousSigningKeys [][]byte            // verify only, after a rotation
	JWTPreviousPublicKeys  []ed25519.PublicKey // verify only, after a rotation
	JWTIssuer              string
	JWTAudience            string
	AccessTokenTTL         time.Duration
	RefreshTokenTTL        time.Duration

	LogLevel string
	LogFile  string

	MaxBodyBytes        int64
	RegistrationEnabled bool
	DocsEnabled         bool // /docs, /openapi.yaml and /openapi.json
	PasswordHashLimit   int

	CORSAllowedOrigins  []string
	CORSAllowAllOrigins bool
	AllowedHosts        []string
	TrustedProxies      []netip.Prefix

	RateAnon          Rate
	RateUser          Rate
	RateAnonSustained *Rate // optional second, longer window
	RateUserSustained *Rate
	RateLogin         Rate // per IP on /api/token/, and failed logins per username
	RateRegister      Rate
	RateToken         Rate // refresh, verify, blacklist, per IP
	RateKeyCreate     Rate // POST /api/keys/, per user

	TLSCertFile       string
	TLSKeyFile        string
	SecureSSLRedirect bool
	HSTSSeconds       int
}

// Rate is a request budget: Limit requests per Window.
type Rate struct {
	Limit  int
	Window time.Duration
}

func (r Rate) String() string { return fmt.Sprintf("%d/%s", r.Limit, r.Window) }

// Production reports whether the server runs with production guard rails.
func (c *Config) Production() bool { return c.Env == "production" }

// Problems is the list of configuration problems, one line each.
type Problems []string

func (p Problems) Error() string { return strings.Join(p, "\n") }

// minSigningKeyBytes is the HS256 key length RFC 7518 3.2 demands.
const minSigningKeyBytes = 32

// Load reads the configuration through getenv. need names what the caller
// is about to do ("serve", "migrate"), so only its settings are required.
// The error, if any, is a Problems with one line per problem.
func Load(getenv func(string) string, need string) (*Config, error) {
	r := reader{getenv: getenv}
	c := &Config{
		Env:                 r.oneOf("APP_ENV", "development", "development", "production"),
		ListenAddr:          r.str("LISTEN_ADDR", ":8000"),
		DatabaseURL:         r.str("DATABASE_URL", ""),
		RedisURL:            r.str("REDIS_URL", ""),
		RedisKeyPrefix:      r.str("REDIS_KEY_PREFIX", "taskmanager:ratelimit:"),
		JWTIssuer:           r.str("JWT_ISSUER", "taskmanager"),
		JWTAudience:         r.str("JWT_AUDIENCE", "taskmanager-api"),
		AccessTokenTTL:      r.duration("ACCESS_TOKEN_TTL", 15*time.Minute),
		RefreshTokenTTL:     r.duration("REFRESH_TOKEN_TTL", 7*24*time.Hour),
		LogLevel:            r.oneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFile:             r.str("LOG_FILE", ""),
		MaxBodyBytes:        int64(r.integer("MAX_BODY_BYTES", 1<<20, 1)),
		RegistrationEnabled: r.boolean("REGISTRATION_ENABLED", true),
		PasswordHashLimit:   r.integer("PASSWORD_HASH_CONCURRENCY", runtime.NumCPU(), 1),
		CORSAllowedOrigins:  r.origins("CORS_ALLOWED_ORIGINS"),
		CORSAllowAllOrigins: r.boolean("CORS_ALLOW_ALL_ORIGINS", false),
		AllowedHosts:        r.list("ALLOWED_HOSTS"),
		TrustedProxies:      r.prefixes("TRUSTED_PROXIES"),
		RateAnon:            r.rate("RATE_LIMIT_ANON", Rate{50, time.Minute}),
		RateUser:            r.rate("RATE_LIMIT_USER", Rate{100, time.Minute}),
		RateAnonSustained:   r.optionalRate("RATE_LIMIT_ANON_SUSTAINED"),
		RateUserSustained:   r.optionalRate("RATE_LIMIT_USER_SUSTAINED"),
		RateLogin:           r.rate("RATE_LIMIT_LOGIN", Rate{10, time.Minute}),
		RateRegister:        r.rate("RATE_LIMIT_REGISTER", Rate{5, time.Minute}),
		RateToken:           r.rate("RATE_LIMIT_TOKEN", Rate{30, time.Minute}),
		RateKeyCreate:       r.rate("RATE_LIMIT_KEY_CREATE", Rate{20, time.Minute}),
		TLSCertFile:         r.str("TLS_CERT_FILE", ""),
		TLSKeyFile:          r.str("TLS_KEY_FILE", ""),
		SecureSSLRedirect:   r.boolean("SECURE_SSL_REDIRECT", false),
		HSTSSeconds:         r.integer("SECURE_HSTS_SECONDS", 0, 0),
	}
	// The interactive docs are a development aid unless asked for.
	c.DocsEnabled = r.boolean("DOCS_ENABLED", !c.Production())
	if key := getenv("JWT_SIGNING_KEY"); key != "" {
		c.JWTSigningKey = []byte(key)
	}
	for _, k := range r.list("JWT_PREVIOUS_SIGNING_KEYS") {
		c.JWTPreviousSigningKeys = append(c.JWTPreviousSigningKeys, []byte(k))
	}
	if path := r.str("JWT_PRIVATE_KEY_FILE", ""); path != "" {
		c.JWTPrivateKey = r.privateKey("JWT_PRIVATE_KEY_FILE", path)
	}
	for _, path := range r.list("JWT_PREVIOUS_PUBLIC_KEY_FILES") {
		if k := r.publicKey("JWT_PREVIOUS_PUBLIC_KEY_FILES", path); k != nil {
			c.JWTPreviousPublicKeys = append(c.JWTPreviousPublicKeys, k)
		}
	}

	if need == "serve" || need == "migrate" || need == "createuser" {
		if c.DatabaseURL == "" {
			r.problem("DATABASE_URL is required (postgres://user:password@host:5432/dbname)")
		} else if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			r.problem("DATABASE_URL must be a postgres:// URL")
		}
	}
	if need == "serve" {
		c.checkServe(&r)
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			r.problem("REDIS_URL must be a redis://, rediss:// or unix:// URL")
		}
	}
	if len(r.problems) > 0 {
		return nil, r.problems
	}
	return c, nil
}

func (c *Config) checkServe(r *reader) {
	switch {
	case c.JWTPrivateKey != nil:
	case len(c.JWTSigningKey) == 0:
		r.problem("JWT_SIGNING_KEY is required (at least 32 bytes; generate one with: openssl rand -hex 32), or JWT_PRIVATE_KEY_FILE for Ed25519")
	case len(c.JWTSigningKey) < minSigningKeyBytes:
		r.problem(fmt.Sprintf("JWT_SIGNING_KEY is too short: %d bytes, at least %d needed", len(c.JWTSigningKey), minSigningKeyBytes))
	}
	for _, k := range c.JWTPreviousSigningKeys {
		if len(k) < minSigningKeyBytes {
			r.problem(fmt.Sprintf("JWT_PREVIOUS_SIGNING_KEYS: a key is too short: %d bytes, at least %d needed", len(k), minSigningKeyBytes))
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		r.problem("TLS_CERT_FILE and TLS_KEY_FILE must be set together")
	}
	if c.AccessTokenTTL <= 0 || c.RefreshTokenTTL <= c.AccessTokenTTL {
		r.problem("ACCESS_TOKEN_TTL must be positive and shorter than REFRESH_TOKEN_TTL")
	}
	if !c.Production() {
		return
	}
	if c.CORSAllowAllOrigins {
		r.problem("CORS_ALLOW_ALL_ORIGINS=true is a development shortcut and is refused when APP_ENV=production")
	}
	if len(c.AllowedHosts) == 0 {
		r.problem("ALLOWED_HOSTS is required when APP_ENV=production")
	}
	for _, h := range c.AllowedHosts {
		if h == "*" {
			r.problem("ALLOWED_HOSTS=* accepts any Host, refused when APP_ENV=production: list the names clients use")
		}
	}
	for _, o := range c.CORSAllowedOrigins {
		if u, err := url.Parse(o); err == nil && strings.EqualFold(u.Scheme, "http") {
			r.problem(fmt.Sprintf("CORS_ALLOWED_ORIGINS: %s is plain http, refused when APP_ENV=production", o))
		}
	}
	if !c.SecureSSLRedirect && c.TLSCertFile == "" && len(c.TrustedProxies) == 0 {
		r.problem("SECURE_SSL_REDIRECT is off with neither TLS_CERT_FILE nor TRUSTED_PROXIES: production must serve HTTPS")
	}
}

// reader collects parse problems instead of stopping at the first one.
type reader struct {
	getenv   func(string) string
	problems Problems
}

func (r *reader) problem(s string) { r.problems = append(r.problems, s) }

func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(r.str(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.problem(fmt.Sprintf("%s must be one of %s, got %q", name, strings.Join(allowed, ", "), v))
	return def
}

func (r *reader) boolean(name string, def bool) bool {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.problem(fmt.Sprintf("%s must be true or false, got %q", name, v))
		return def
	}
	return b
}

func (r *reader) integer(name string, def, min int) int {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		r.problem(fmt.Sprintf("%s must be an integer of at least %d, got %q", name, min, v))
		return def
	}
	return n
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.problem(fmt.Sprintf("%s must be a positive duration such as 15m or 168h, got %q", name, v))
		return def
	}
	return d
}

func (r *reader) list(name string) []string {
	var out []string
	for _, s := range strings.Split(r.getenv(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (r *reader) origins(name string) []string {
	out := r.list(name)
	for i, o := range out {
		u, err := url.Parse(o)
		if err == nil {
			// Browsers send origins in lower case; compare them that way.
			out[i] = strings.ToLower(u.Scheme + "://" + u.Host)
		}
		if o == "*" {
			r.problem(fmt.Sprintf("%s: use CORS_ALLOW_ALL_ORIGINS=true instead of *", name))
		} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || strings.ContainsAny(o, "?#") || u.User != nil {
			r.problem(fmt.Sprintf("%s: %q must be a bare origin such as https://app.example.com (no path or trailing slash)", name, o))
		}
	}
	return out
}

func (r *reader) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range r.list(name) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				r.problem(fmt.Sprintf("%s: %q is neither an IP address nor a CIDR", name, s))
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}

func (r *reader) pemBlock(name, path string) []byte {
	raw, err := os.ReadFile(path)
	if err != nil {
		r.problem(fmt.Sprintf("%s: cannot read %s", name, path))
		return nil
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		r.problem(fmt.Sprintf("%s: %s holds no PEM block", name, path))
		return nil
	}
	return block.Bytes
}

func (r *reader) privateKey(name, path string) ed25519.PrivateKey {
	der := r.pemBlock(name, path)
	if der == nil {
		return nil
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if k, ok := key.(ed25519.PrivateKey); err == nil && ok {
		return k
	}
	r.problem(fmt.Sprintf("%s: %s is not a PKCS #8 Ed25519 private key (openssl genpkey -algorithm ed25519)", name, path))
	return nil
}

func (r *reader) publicKey(name, path string) ed25519.PublicKey {
	der := r.pemBlock(name, path)
	if der == nil {
		return nil
	}
	key, err := x509.ParsePKIXPublicKey(der)
	if k, ok := key.(ed25519.PublicKey); err == nil && ok {
		return k
	}
	r.problem(fmt.Sprintf("%s: %s is not an Ed25519 public key", name, path))
	return nil
}

var ratePeriods = map[string]time.Duration{
	"second": time.Second, "sec": time.Second, "s": time.Second,
	"minute": time.Minute, "min": time.Minute, "m": time.Minute,
	"hour": time.Hour, "h": time.Hour,
	"day": 24 * time.Hour, "d": 24 * time.Hour,
}

// optionalRate is a rate that is off unless set.
func (r *reader) optionalRate(name string) *Rate {
	if r.str(name, "") == "" {
		return nil
	}
	rate := r.rate(name, Rate{})
	return &rate
}

// rate parses DRF's "100/minute" notation.
func (r *reader) rate(name string, def Rate) Rate {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, period, ok := strings.Cut(v, "/")
	limit, err := strconv.Atoi(n)
	window, known := ratePeriods[strings.ToLower(period)]
	if !ok || err != nil || limit < 1 || !known {
		r.problem(fmt.Sprintf("%s must look like 100/minute (second, minute, hour or day), got %q", name, v))
		return def
	}
	return Rate{Limit: limit, Window: window}
}
