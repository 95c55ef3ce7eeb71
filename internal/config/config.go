// Package config reads the process configuration from the environment, once,
// and reports every problem on its own line.
package config

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/publicsuffix"
)

// Config is every setting of the server. Read it with Load.
type Config struct {
	Env        string // "development" or "production"
	ListenAddr string
	PublicURL  *url.URL // scheme and host (path empty) of every absolute URL written; nil when unset

	DatabaseURL    string
	DBQueryTimeout time.Duration // budget of one query, after which the database cancels it
	RedisURL       string
	RedisKeyPrefix string

	// ListenDatabaseURL is a direct connection for LISTEN, which a
	// transaction pooler in DATABASE_URL cannot carry; DATABASE_URL by default.
	ListenDatabaseURL string

	JWTSigningKey          []byte
	JWTPrivateKey          ed25519.PrivateKey  // from JWT_PRIVATE_KEY_FILE; signs with EdDSA when set
	JWTPreviousSigningKeys [][]byte            // verify only, after a rotation
	JWTPreviousPublicKeys  []ed25519.PublicKey // verify only, after a rotation
	JWTIssuer              string
	JWTAudience            string
	AccessTokenTTL         time.Duration
	RefreshTokenTTL        time.Duration
	SessionMaxAge          time.Duration // a session's end, counted from its login, however often it is refreshed
	APIKeyDefaultTTL       time.Duration // expiry of a new API key that names none
	APIKeyMaxTTL           time.Duration // latest expiry a new API key may ask for
	// OAuthRSAKey signs OAuth access tokens and ID tokens (RS256), from
	// OAUTH_RSA_KEY_FILE. Nil when unset: development's serve generates one
	// under .data/; production never does, and warns that the OAuth
	// server is off without it.
	OAuthRSAKey *rsa.PrivateKey
	// OAuthPreviousRSAKeys verify OAuth tokens signed before a rotation
	// (OAUTH_PREVIOUS_RSA_KEY_FILES) and stay in the JWKS; they never sign.
	OAuthPreviousRSAKeys []*rsa.PublicKey
	// MFAEncryptionKey seals TOTP secrets at rest (AES-256-GCM), from
	// MFA_ENCRYPTION_KEY (64 hex digits). Nil when unset: development's
	// serve generates one under .data/; production warns that the second
	// factor cannot be set up. MFAPreviousEncryptionKeys
	// (MFA_PREVIOUS_ENCRYPTION_KEYS) only open secrets sealed before a rotation.
	MFAEncryptionKey          []byte
	MFAPreviousEncryptionKeys [][]byte
	// WebAuthnRPID is the passkeys' relying party (WEBAUTHN_RP_ID), a host
	// name: PUBLIC_URL's host by default, else localhost. WebAuthnOrigins
	// (WEBAUTHN_ORIGINS) are the pages that may run its ceremonies:
	// PUBLIC_URL by default, else http://localhost on the listen port.
	WebAuthnRPID    string
	WebAuthnOrigins []string

	LogLevel string
	LogFile  string

	MetricsAddr    string        // the Prometheus listener; empty when off
	AuditRetention time.Duration // how long audit events are kept

	MaxBodyBytes        int64
	RegistrationEnabled bool
	DocsEnabled         bool // /docs, /openapi.yaml and /openapi.json
	PasswordHashLimit   int
	MaxTasksPerUser     int

	CORSAllowedOrigins  []string
	CORSAllowAllOrigins bool
	AllowedHosts        []string // never empty in development: unset means the loopback names
	TrustedProxies      []netip.Prefix

	RateAnon          Rate
	RateUser          Rate
	RateAnonSustained *Rate // optional second, longer window
	RateUserSustained *Rate
	RateLogin         Rate // every request to /api/token/, per IP
	RateLoginFailures Rate // failed password checks per (username, IP or IPv6 /64)
	RateLoginUsername Rate // failed password checks per username from any IP; slows only addresses that failed
	RateRegister      Rate
	RateToken         Rate // refresh, verify, blacklist, per IP
	RateKeyCreate     Rate // POST /api/keys/, per user

	TLSCertFile       string
	TLSKeyFile        string
	SecureSSLRedirect bool
	HSTSSeconds       int

	// Warnings are risky but legal choices, one line each, for the
	// operator to read at start-up. Only production has any.
	Warnings []string
}

// Rate is a request budget: Limit requests per Window.
type Rate struct {
	Limit  int
	Window time.Duration
}

// String writes the rate as a limit and a window, e.g. "100/1m0s".
func (r Rate) String() string { return fmt.Sprintf("%d/%s", r.Limit, r.Window) }

// Production reports whether the server runs with production guard rails.
func (c *Config) Production() bool { return c.Env == "production" }

// Problems is the list of configuration problems, one line each.
type Problems []string

// Error joins the problems, one a line.
func (p Problems) Error() string { return strings.Join(p, "\n") }

const (
	// minSigningKeyBytes is the HS256 key length RFC 7518 3.2 demands.
	minSigningKeyBytes = 32

	// The upper bounds keep a typo (an extra zero, hours for minutes) from
	// quietly turning a limit off.
	maxBodyBytes       = 64 << 20
	maxHashConcurrency = 256 // each hash holds 12 MiB
	maxRateLimit       = 1_000_000
	maxTasksPerUser    = 10_000_000
	maxHSTSSeconds     = 63_072_000 // two years, the preload list's ceiling
	maxAccessTokenTTL  = 24 * time.Hour
	maxProdAccessTTL   = time.Hour // a stolen access token is only as dead as its exp
	maxRefreshTokenTTL = 90 * 24 * time.Hour
	maxSessionMaxAge   = 365 * 24 * time.Hour
	maxAPIKeyTTL       = 5 * 365 * 24 * time.Hour
	maxAuditRetention  = 10 * 365 * 24 * time.Hour

	// maxEchoBytes is how much of a bad value a problem line quotes.
	maxEchoBytes = 64
)

// defaultMetricsAddr is where metrics are served unless METRICS_ADDR says
// otherwise: this machine only, never the public port.
const defaultMetricsAddr = "127.0.0.1:9464"

// metricsOff is what METRICS_ADDR reads as when it is set but empty (see
// Getenv): no metrics listener.
const metricsOff = "off"

// Getenv reads the environment through lookup (os.LookupEnv) for Load. A
// variable set to nothing reads as unset, so its default applies, except
// METRICS_ADDR: set but empty, it turns the metrics listener off, as
// "off" does.
func Getenv(lookup func(string) (string, bool)) func(string) string {
	return func(name string) string {
		v, ok := lookup(name)
		if name == "METRICS_ADDR" && ok && strings.TrimSpace(v) == "" {
			return metricsOff
		}
		return v
	}
}

// devAllowedHosts is what ALLOWED_HOSTS means when unset in development,
// as Django's DEBUG mode: the machine itself, never any host.
var devAllowedHosts = []string{"localhost", "127.0.0.1", "[::1]"}

// ipv4Mapped is the IPv6 block that holds every IPv4 address (::ffff:a.b.c.d).
var ipv4Mapped = netip.MustParsePrefix("::ffff:0:0/96")

// Load reads the configuration through getenv. need names what the caller
// is about to do ("serve", "migrate"), so only its settings are required.
// The error, if any, is a Problems with one line per problem.
func Load(getenv func(string) string, need string) (*Config, error) {
	r := reader{getenv: getenv}
	c := &Config{
		Env:                 r.oneOf("APP_ENV", "development", "development", "production"),
		ListenAddr:          r.str("LISTEN_ADDR", ":8000"),
		PublicURL:           r.publicURL("PUBLIC_URL"),
		DatabaseURL:         r.str("DATABASE_URL", ""),
		DBQueryTimeout:      r.duration("DB_QUERY_TIMEOUT", 2*time.Second, 10*time.Millisecond, 20*time.Second), // under the 30 s write timeout
		RedisURL:            r.str("REDIS_URL", ""),
		RedisKeyPrefix:      r.str("REDIS_KEY_PREFIX", "taskmanager:ratelimit:"),
		JWTIssuer:           r.str("JWT_ISSUER", "taskmanager"),
		JWTAudience:         r.str("JWT_AUDIENCE", "taskmanager-api"),
		AccessTokenTTL:      r.duration("ACCESS_TOKEN_TTL", 15*time.Minute, time.Second, maxAccessTokenTTL),
		RefreshTokenTTL:     r.duration("REFRESH_TOKEN_TTL", 7*24*time.Hour, time.Second, maxRefreshTokenTTL),
		SessionMaxAge:       r.duration("SESSION_MAX_AGE", 30*24*time.Hour, time.Second, maxSessionMaxAge),
		APIKeyDefaultTTL:    r.duration("API_KEY_DEFAULT_TTL", 90*24*time.Hour, time.Second, maxAPIKeyTTL),
		APIKeyMaxTTL:        r.duration("API_KEY_MAX_TTL", 365*24*time.Hour, time.Second, maxAPIKeyTTL),
		LogLevel:            r.oneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFile:             r.str("LOG_FILE", ""),
		MetricsAddr:         r.str("METRICS_ADDR", defaultMetricsAddr),
		AuditRetention:      r.duration("AUDIT_RETENTION", 90*24*time.Hour, time.Hour, maxAuditRetention),
		MaxBodyBytes:        int64(r.integer("MAX_BODY_BYTES", 1<<20, 1, maxBodyBytes)),
		RegistrationEnabled: r.boolean("REGISTRATION_ENABLED", true),
		PasswordHashLimit:   r.integer("PASSWORD_HASH_CONCURRENCY", min(runtime.NumCPU(), maxHashConcurrency), 1, maxHashConcurrency),
		MaxTasksPerUser:     r.integer("MAX_TASKS_PER_USER", 100_000, 1, maxTasksPerUser),
		CORSAllowedOrigins:  r.origins("CORS_ALLOWED_ORIGINS"),
		CORSAllowAllOrigins: r.boolean("CORS_ALLOW_ALL_ORIGINS", false),
		AllowedHosts:        r.list("ALLOWED_HOSTS"),
		TrustedProxies:      r.prefixes("TRUSTED_PROXIES"),
		RateAnon:            r.rate("RATE_LIMIT_ANON", Rate{50, time.Minute}),
		RateUser:            r.rate("RATE_LIMIT_USER", Rate{100, time.Minute}),
		RateAnonSustained:   r.optionalRate("RATE_LIMIT_ANON_SUSTAINED"),
		RateUserSustained:   r.optionalRate("RATE_LIMIT_USER_SUSTAINED"),
		RateLogin:           r.rate("RATE_LIMIT_LOGIN", Rate{10, time.Minute}),
		RateLoginFailures:   r.rate("RATE_LIMIT_LOGIN_FAILURES", Rate{10, time.Minute}),
		RateLoginUsername:   r.rate("RATE_LIMIT_LOGIN_USERNAME", Rate{100, time.Hour}),
		RateRegister:        r.rate("RATE_LIMIT_REGISTER", Rate{5, time.Minute}),
		RateToken:           r.rate("RATE_LIMIT_TOKEN", Rate{30, time.Minute}),
		RateKeyCreate:       r.rate("RATE_LIMIT_KEY_CREATE", Rate{20, time.Minute}),
		TLSCertFile:         r.str("TLS_CERT_FILE", ""),
		TLSKeyFile:          r.str("TLS_KEY_FILE", ""),
		SecureSSLRedirect:   r.boolean("SECURE_SSL_REDIRECT", false),
		HSTSSeconds:         r.integer("SECURE_HSTS_SECONDS", 0, 0, maxHSTSSeconds),
	}
	// The interactive docs are a development aid unless asked for.
	c.DocsEnabled = r.boolean("DOCS_ENABLED", !c.Production())
	if len(c.AllowedHosts) == 0 && !c.Production() {
		c.AllowedHosts = append([]string(nil), devAllowedHosts...)
		if c.PublicURL != nil {
			c.AllowedHosts = append(c.AllowedHosts, hostName(c.PublicURL))
		}
	}
	if key := getenv("JWT_SIGNING_KEY"); key != "" {
		c.JWTSigningKey = []byte(key)
	}
	for _, k := range r.list("JWT_PREVIOUS_SIGNING_KEYS") {
		c.JWTPreviousSigningKeys = append(c.JWTPreviousSigningKeys, []byte(k))
	}
	if path := r.str("JWT_PRIVATE_KEY_FILE", ""); path != "" {
		c.JWTPrivateKey = r.privateKey("JWT_PRIVATE_KEY_FILE", path)
	}
	if path := r.str("OAUTH_RSA_KEY_FILE", ""); path != "" {
		c.OAuthRSAKey = r.rsaKey("OAUTH_RSA_KEY_FILE", path)
	}
	for _, path := range r.list("OAUTH_PREVIOUS_RSA_KEY_FILES") {
		if k := r.rsaPublicKey("OAUTH_PREVIOUS_RSA_KEY_FILES", path); k != nil {
			c.OAuthPreviousRSAKeys = append(c.OAuthPreviousRSAKeys, k)
		}
	}
	c.MFAEncryptionKey = r.encryptionKey("MFA_ENCRYPTION_KEY", r.str("MFA_ENCRYPTION_KEY", ""))
	for _, k := range r.list("MFA_PREVIOUS_ENCRYPTION_KEYS") {
		if key := r.encryptionKey("MFA_PREVIOUS_ENCRYPTION_KEYS", k); key != nil {
			c.MFAPreviousEncryptionKeys = append(c.MFAPreviousEncryptionKeys, key)
		}
	}
	c.WebAuthnRPID, c.WebAuthnOrigins = r.webAuthn(c.PublicURL, c.ListenAddr)
	for _, path := range r.list("JWT_PREVIOUS_PUBLIC_KEY_FILES") {
		if k := r.publicKey("JWT_PREVIOUS_PUBLIC_KEY_FILES", path); k != nil {
			c.JWTPreviousPublicKeys = append(c.JWTPreviousPublicKeys, k)
		}
	}

	if need == "serve" || need == "migrate" || need == "createuser" || need == "createclient" {
		if c.DatabaseURL == "" {
			r.problem("DATABASE_URL is required (postgres://user:password@host:5432/dbname)")
		} else if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			r.problem("DATABASE_URL must be a postgres:// URL")
		}
	}
	c.ListenDatabaseURL = r.str("LISTEN_DATABASE_URL", c.DatabaseURL)
	if u, err := url.Parse(c.ListenDatabaseURL); c.ListenDatabaseURL != c.DatabaseURL && (err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql")) {
		r.problem("LISTEN_DATABASE_URL must be a postgres:// URL")
	}
	if need == "serve" {
		c.checkServe(&r)
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			r.problem("REDIS_URL must be a redis://, rediss:// or unix:// URL")
		}
	}
	if strings.EqualFold(c.MetricsAddr, metricsOff) {
		c.MetricsAddr = ""
	} else if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil || port == "" {
		r.problem(fmt.Sprintf("METRICS_ADDR must be host:port (e.g. %s), or empty to serve no metrics", defaultMetricsAddr))
	}
	if len(r.problems) > 0 {
		return nil, r.problems
	}
	if c.Production() {
		c.Warnings = c.warnings(getenv)
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
	if c.RefreshTokenTTL <= c.AccessTokenTTL {
		r.problem(fmt.Sprintf("ACCESS_TOKEN_TTL (%s) must be shorter than REFRESH_TOKEN_TTL (%s)", short(c.AccessTokenTTL), short(c.RefreshTokenTTL)))
	}
	if c.SessionMaxAge <= c.AccessTokenTTL {
		r.problem(fmt.Sprintf("SESSION_MAX_AGE (%s) must be longer than ACCESS_TOKEN_TTL (%s)", short(c.SessionMaxAge), short(c.AccessTokenTTL)))
	}
	if c.APIKeyDefaultTTL > c.APIKeyMaxTTL {
		r.problem(fmt.Sprintf("API_KEY_DEFAULT_TTL (%s) must not exceed API_KEY_MAX_TTL (%s)", short(c.APIKeyDefaultTTL), short(c.APIKeyMaxTTL)))
	}
	if !c.Production() {
		// (Production demands an https PUBLIC_URL anyway.)
		if c.SecureSSLRedirect && c.PublicURL != nil && c.PublicURL.Scheme != "https" {
			r.problem("PUBLIC_URL must be https:// when SECURE_SSL_REDIRECT=true: the redirect would point at plain HTTP again")
		}
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
		} else if domain, ok := strings.CutPrefix(h, "."); ok && isPublicSuffix(domain) {
			r.problem(fmt.Sprintf("ALLOWED_HOSTS: %s would accept every site under a public suffix, refused when APP_ENV=production: list your own domain, e.g. .example.com", echo(h)))
		}
	}
	for _, o := range c.CORSAllowedOrigins {
		if u, err := url.Parse(o); err == nil && strings.EqualFold(u.Scheme, "http") {
			r.problem(fmt.Sprintf("CORS_ALLOWED_ORIGINS: %s is plain http, refused when APP_ENV=production", o))
		}
		if strings.Contains(o, "*") {
			r.problem(fmt.Sprintf("CORS_ALLOWED_ORIGINS: %s is a wildcard, refused when APP_ENV=production: list each origin", o))
		}
	}
	for _, p := range c.TrustedProxies {
		if tooWide(p) {
			r.problem(fmt.Sprintf("TRUSTED_PROXIES: %s is wider than /8 (IPv4) or /32 (IPv6), so clients could forge X-Forwarded-For; refused when APP_ENV=production", p))
		}
	}
	if c.AccessTokenTTL > maxProdAccessTTL {
		r.problem(fmt.Sprintf("ACCESS_TOKEN_TTL is %s, over the %s allowed when APP_ENV=production", short(c.AccessTokenTTL), short(maxProdAccessTTL)))
	}
	if c.PublicURL != nil && c.PublicURL.Scheme != "https" {
		r.problem("PUBLIC_URL must be https:// when APP_ENV=production")
	}
	if !c.SecureSSLRedirect && c.TLSCertFile == "" && len(c.TrustedProxies) == 0 {
		r.problem("SECURE_SSL_REDIRECT is off with neither TLS_CERT_FILE nor TRUSTED_PROXIES: production must serve HTTPS")
	}
}

// warnings names the settings that are legal but send secrets across the
// network in clear. The lines never quote a URL: it may hold a password.
func (c *Config) warnings(getenv func(string) string) []string {
	var out []string
	if c.OAuthRSAKey == nil {
		out = append(out, "OAUTH_RSA_KEY_FILE is unset: production never signs with a generated key, so the OAuth and OpenID Connect server is off (its routes answer 404) until it names an RSA key (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072)")
	}
	if c.MFAEncryptionKey == nil {
		out = append(out, "MFA_ENCRYPTION_KEY is unset: production never seals TOTP secrets with a generated key, so users cannot set up an authenticator app (enrollment answers 503) until it is set (openssl rand -hex 32)")
	}
	if c.WebAuthnRPID == "localhost" {
		out = append(out, "WEBAUTHN_RP_ID is localhost (neither it nor PUBLIC_URL is set): passkeys work only for pages opened on localhost; set PUBLIC_URL or WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS")
	}
	if u, err := url.Parse(c.RedisURL); c.RedisURL != "" && err == nil && u.Scheme == "redis" && !loopback(u.Hostname()) {
		out = append(out, "REDIS_URL is plain redis:// to a non-loopback host: rate-limit traffic and the Redis password cross the network unencrypted; use rediss://")
	}
	if host, _, err := net.SplitHostPort(c.MetricsAddr); c.MetricsAddr != "" && err == nil && (host == "" || net.ParseIP(host).IsUnspecified()) {
		out = append(out, "METRICS_ADDR listens on every interface: make sure only Prometheus can reach that port (listen on a private address instead)")
	}
	if c.DatabaseURL != "" && postgresInClear(c.DatabaseURL, getenv) {
		out = append(out, "DATABASE_URL has sslmode=disable to a non-loopback host: queries, password hashes and the database password cross the network unencrypted; use sslmode=verify-full")
	}
	return out
}

// postgresInClear reports whether dsn, a postgres:// URL (Load refuses
// anything else), connects without TLS to a host other than this machine.
// As libpq and pgx do, PGSSLMODE and PGHOST fill in what dsn leaves out.
func postgresInClear(dsn string, getenv func(string) string) bool {
	u, err := url.Parse(dsn)
	if err != nil {
		return false
	}
	settings := map[string]string{}
	if u.Host != "" {
		settings["host"] = u.Host
	}
	for k, v := range u.Query() {
		settings[k] = v[len(v)-1]
	}
	mode, ok := settings["sslmode"]
	if !ok {
		mode = getenv("PGSSLMODE")
	}
	if mode != "disable" {
		return false
	}
	hosts, ok := settings["host"]
	if !ok {
		hosts = getenv("PGHOST")
	}
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); strings.HasPrefix(h, "/") {
			continue // a unix socket
		}
		if name, _, err := net.SplitHostPort(h); err == nil {
			h = name
		}
		if !loopback(h) {
			return true
		}
	}
	return false
}

// loopback reports whether host names this machine. An empty host is
// loopback too: clients then default to localhost or a local socket.
func loopback(host string) bool {
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" || strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// tooWide reports whether p spans more than an /8 of IPv4 or a /32 of
// IPv6. An IPv6 block around ::ffff:0:0/96 holds all of IPv4 as well.
func tooWide(p netip.Prefix) bool {
	if p.Addr().Is4() {
		return p.Bits() < 8
	}
	return p.Bits() < 32 || p.Overlaps(ipv4Mapped)
}

// isPublicSuffix reports whether domain is one under which anyone can
// register names (com, co.uk, github.io), so ".domain" matches strangers.
func isPublicSuffix(domain string) bool {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if domain == "" {
		return true
	}
	suffix, _ := publicsuffix.PublicSuffix(domain)
	return suffix == domain
}

// hostName is u's host without its port, in ALLOWED_HOSTS notation.
func hostName(u *url.URL) string {
	if h := u.Hostname(); strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return u.Hostname()
}

// short writes d without the zero units time.Duration.String adds: 24h,
// not 24h0m0s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// echo quotes a bad value for a problem line, cut short: a pasted blob
// must not flood the log.
func echo(v string) string {
	if len(v) <= maxEchoBytes {
		return strconv.Quote(v)
	}
	cut := maxEchoBytes
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return fmt.Sprintf("%q... (%d bytes)", v[:cut], len(v))
}

// echoURL is echo for a value that may carry a password: a parsed URL's
// password is masked, and an unparsable value with user info is withheld.
func echoURL(v string) string {
	if u, err := url.Parse(v); err == nil {
		if _, has := u.User.Password(); has {
			return echo(u.Redacted())
		}
		return echo(v)
	}
	if strings.Contains(v, "@") {
		return "(value withheld: it may hold a password)"
	}
	return echo(v)
}

// reader collects parse problems instead of stopping at the first one.
type reader struct {
	getenv   func(string) string
	problems Problems
}

func (r *reader) problem(s string) { r.problems = append(r.problems, s) }

// encryptionKey reads a 256-bit key written as 64 hex digits; nil for "".
func (r *reader) encryptionKey(name, v string) []byte {
	if v == "" {
		return nil
	}
	k, err := hex.DecodeString(strings.TrimSpace(v))
	if err != nil || len(k) != 32 {
		r.problem(fmt.Sprintf("%s must be 64 hex digits, a 256-bit key (generate one with: openssl rand -hex 32)", name))
		return nil
	}
	return k
}

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
	r.problem(fmt.Sprintf("%s must be one of %s, got %s", name, strings.Join(allowed, ", "), echo(v)))
	return def
}

func (r *reader) boolean(name string, def bool) bool {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.problem(fmt.Sprintf("%s must be true or false, got %s", name, echo(v)))
		return def
	}
	return b
}

func (r *reader) integer(name string, def, lo, hi int) int {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.problem(fmt.Sprintf("%s must be an integer from %d to %d, got %s", name, lo, hi, echo(v)))
		return def
	}
	return n
}

func (r *reader) duration(name string, def, lo, hi time.Duration) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		r.problem(fmt.Sprintf("%s must be a duration from %s to %s, such as 15m or 168h, got %s", name, short(lo), short(hi), echo(v)))
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

// publicURL reads the base of absolute URLs: a scheme and a host, nothing
// a link could inherit by accident.
func (r *reader) publicURL(name string) *url.URL {
	v := r.str(name, "")
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" ||
		u.User != nil || strings.ContainsAny(v, "?#") || (u.Path != "" && u.Path != "/") {
		r.problem(fmt.Sprintf("%s must be a scheme and host such as https://api.example.com (no user info, path, query or fragment), got %s", name, echoURL(v)))
		return nil
	}
	return &url.URL{Scheme: u.Scheme, Host: strings.ToLower(u.Host)}
}

// webAuthn reads the passkeys' relying party and origins. Browsers refuse
// an IP address as a relying party, and accept an origin only on the
// relying party's host or below it.
func (r *reader) webAuthn(public *url.URL, listen string) (rpID string, origins []string) {
	// An IP PUBLIC_URL is fine for the API, not for passkeys: localhost then.
	def, defOrigins := "localhost", []string(nil)
	if public != nil && net.ParseIP(public.Hostname()) == nil {
		def, defOrigins = public.Hostname(), []string{public.String()}
	} else if _, port, err := net.SplitHostPort(listen); err == nil {
		defOrigins = []string{"http://localhost:" + port}
	}
	rpID = strings.ToLower(r.str("WEBAUTHN_RP_ID", def))
	switch {
	case net.ParseIP(strings.Trim(rpID, "[]")) != nil:
		r.problem(fmt.Sprintf("WEBAUTHN_RP_ID: %s is an IP address; WebAuthn needs a host name (localhost in development)", echo(rpID)))
		return rpID, nil
	case rpID == "" || strings.ContainsAny(rpID, ":/ "):
		r.problem(fmt.Sprintf("WEBAUTHN_RP_ID: %s must be a host name such as example.com", echo(rpID)))
		return rpID, nil
	}
	origins = r.origins("WEBAUTHN_ORIGINS")
	if len(origins) == 0 {
		origins = defOrigins
	}
	for _, o := range origins {
		if u, err := url.Parse(o); err == nil && u.Hostname() != rpID && !strings.HasSuffix(u.Hostname(), "."+rpID) {
			r.problem(fmt.Sprintf("WEBAUTHN_ORIGINS: %s is not on %s or below it, so browsers would refuse its passkeys", echo(o), rpID))
		}
	}
	return rpID, origins
}

func (r *reader) origins(name string) []string {
	out := r.list(name)
	for i, o := range out {
		u, err := url.Parse(o)
		if err == nil {
			// Browsers send origins in lower case; compare them that way.
			out[i] = strings.ToLower(u.Scheme + "://" + u.Host)
		}
		switch {
		case o == "*":
			r.problem(fmt.Sprintf("%s: use CORS_ALLOW_ALL_ORIGINS=true instead of *", name))
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || strings.ContainsAny(o, "?#") || u.User != nil:
			r.problem(fmt.Sprintf("%s: %s must be a bare origin such as https://app.example.com (no path or trailing slash)", name, echoURL(o)))
		case strings.Count(o, "*") > 1:
			// go-chi/cors reads the first * as the wildcard and the rest literally.
			r.problem(fmt.Sprintf("%s: %s has more than one *, so it can never match", name, echo(o)))
		}
	}
	return out
}

// prefixes reads CIDRs and single addresses. An IPv4-mapped block
// (::ffff:10.0.0.0/104) is stored as the IPv4 block it means, the form
// client addresses are compared in.
func (r *reader) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range r.list(name) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				r.problem(fmt.Sprintf("%s: %s is neither an IP address nor a CIDR", name, echo(s)))
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
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

// minRSABits is the smallest RSA key accepted for signing (NIST SP 800-57).
const minRSABits = 2048

func (r *reader) rsaKey(name, path string) *rsa.PrivateKey {
	der := r.pemBlock(name, path)
	if der == nil {
		return nil
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		key, err = x509.ParsePKCS1PrivateKey(der)
	}
	k, ok := key.(*rsa.PrivateKey)
	if err != nil || !ok {
		r.problem(fmt.Sprintf("%s: %s is not an RSA private key (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072)", name, path))
		return nil
	}
	if k.N.BitLen() < minRSABits {
		r.problem(fmt.Sprintf("%s: %s is a %d-bit RSA key, at least %d bits needed", name, path, k.N.BitLen(), minRSABits))
		return nil
	}
	return k
}

// rsaPublicKey reads a former OAuth key: its public half (PKIX), or the
// old private key file itself.
func (r *reader) rsaPublicKey(name, path string) *rsa.PublicKey {
	der := r.pemBlock(name, path)
	if der == nil {
		return nil
	}
	if key, err := x509.ParsePKIXPublicKey(der); err == nil {
		if k, ok := key.(*rsa.PublicKey); ok && k.N.BitLen() >= minRSABits {
			return k
		}
	} else if k := r.rsaKey(name, path); k != nil {
		return &k.PublicKey
	} else {
		return nil // rsaKey said why
	}
	r.problem(fmt.Sprintf("%s: %s is not an RSA key of at least %d bits", name, path, minRSABits))
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
	if !ok || err != nil || limit < 1 || limit > maxRateLimit || !known {
		r.problem(fmt.Sprintf("%s must look like 100/minute: from 1 to %d per second, minute, hour or day, got %s", name, maxRateLimit, echo(v)))
		return def
	}
	return Rate{Limit: limit, Window: window}
}
