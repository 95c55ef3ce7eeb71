package config

import (
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	testDatabaseURL = "postgres://app:s3cret-db-pass@db.internal:5432/tasks"
	testSigningKey  = "0123456789abcdef0123456789abcdef" // exactly 32 bytes
)

// env is a fake environment for Load.
type env map[string]string

func (e env) get(name string) string { return e[name] }

// with returns a copy of e with the given name=value pairs set.
func (e env) with(kv ...string) env {
	out := maps.Clone(e)
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// devEnv is the least a development "serve" needs.
func devEnv() env {
	return env{"DATABASE_URL": testDatabaseURL, "JWT_SIGNING_KEY": testSigningKey}
}

// prodEnv is a production environment that passes every guard rail.
func prodEnv() env {
	return env{
		"APP_ENV":              "production",
		"DATABASE_URL":         testDatabaseURL,
		"JWT_SIGNING_KEY":      testSigningKey,
		"ALLOWED_HOSTS":        "api.example.com",
		"CORS_ALLOWED_ORIGINS": "https://app.example.com",
		"SECURE_SSL_REDIRECT":  "true",
		"OAUTH_RSA_KEY_FILE":   rsaKeyFile,
		"MFA_ENCRYPTION_KEY":   testMFAKey,
		"WEBAUTHN_RP_ID":       "example.com",
		"WEBAUTHN_ORIGINS":     "https://app.example.com",
	}
}

// testMFAKey is a valid MFA_ENCRYPTION_KEY: 64 hex digits.
const testMFAKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

func mustLoad(t *testing.T, e env, need string) *Config {
	t.Helper()
	c, err := Load(e.get, need)
	if err != nil {
		t.Fatalf("Load(%s) error:\n%v", need, err)
	}
	if c == nil {
		t.Fatalf("Load(%s) = nil, nil", need)
	}
	return c
}

// problems loads e and returns the problem lines, failing if there are none.
func problems(t *testing.T, e env, need string) []string {
	t.Helper()
	c, err := Load(e.get, need)
	if err == nil {
		t.Fatalf("Load(%s) error = nil, want problems; config = %+v", need, c)
	}
	if c != nil {
		t.Errorf("Load(%s) returned a config with its error, want nil", need)
	}
	var p Problems
	if !errors.As(err, &p) {
		t.Fatalf("Load error is %T, want Problems", err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(p) {
		t.Fatalf("error has %d lines for %d problems:\n%v", len(lines), len(p), err)
	}
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			t.Fatalf("error has an empty line:\n%v", err)
		}
	}
	return lines
}

// loadCase is a configuration for serve and what Load makes of it.
type loadCase struct {
	name string
	env  env
	want string // the variable the single problem line names; "" for none
}

// loadOrRefuse loads e for serve. With want "" it must load, and returns
// the configuration; otherwise it must refuse with one problem line naming
// want, and returns nil.
func loadOrRefuse(t *testing.T, e env, want string) *Config {
	t.Helper()
	if want == "" {
		return mustLoad(t, e, "serve")
	}
	lines := problems(t, e, "serve")
	if len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Fatalf("problems = %q, want one line naming %s", lines, want)
	}
	return nil
}

// lineNaming returns the lines that mention name.
func linesNaming(lines []string, name string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, name) {
			out = append(out, l)
		}
	}
	return out
}

func TestLoadDefaults(t *testing.T) {
	c := mustLoad(t, devEnv(), "serve")

	if c.ListenAddr != ":8000" {
		t.Errorf("ListenAddr = %q, want :8000", c.ListenAddr)
	}
	if c.Env != "development" || c.Production() {
		t.Errorf("Env = %q (production %v), want development", c.Env, c.Production())
	}
	if c.AccessTokenTTL != 15*time.Minute {
		t.Errorf("AccessTokenTTL = %v, want 15m", c.AccessTokenTTL)
	}
	if c.RefreshTokenTTL != 168*time.Hour {
		t.Errorf("RefreshTokenTTL = %v, want 168h", c.RefreshTokenTTL)
	}
	if c.MaxBodyBytes != 1048576 {
		t.Errorf("MaxBodyBytes = %d, want 1048576", c.MaxBodyBytes)
	}
	if want := (Rate{50, time.Minute}); c.RateAnon != want {
		t.Errorf("RateAnon = %v, want %v", c.RateAnon, want)
	}
	if want := (Rate{100, time.Minute}); c.RateUser != want {
		t.Errorf("RateUser = %v, want %v", c.RateUser, want)
	}
	if !c.RegistrationEnabled {
		t.Errorf("RegistrationEnabled = false, want true")
	}
	if c.RateLogin.Limit >= c.RateAnon.Limit || c.RateRegister.Limit >= c.RateAnon.Limit {
		t.Errorf("RateLogin = %v, RateRegister = %v; want both stricter than RateAnon %v", c.RateLogin, c.RateRegister, c.RateAnon)
	}
	if c.PasswordHashLimit < 1 {
		t.Errorf("PasswordHashLimit = %d, want at least 1", c.PasswordHashLimit)
	}
	if c.CORSAllowAllOrigins || len(c.CORSAllowedOrigins) != 0 {
		t.Errorf("CORS = all %v, origins %q; want no cross-origin access by default", c.CORSAllowAllOrigins, c.CORSAllowedOrigins)
	}
	if c.JWTIssuer == "" || c.JWTAudience == "" {
		t.Errorf("JWTIssuer = %q, JWTAudience = %q; want both set, verification pins them", c.JWTIssuer, c.JWTAudience)
	}
	if string(c.JWTSigningKey) != testSigningKey {
		t.Errorf("JWTSigningKey = %q, want %q", c.JWTSigningKey, testSigningKey)
	}
	if c.DatabaseURL != testDatabaseURL {
		t.Errorf("DatabaseURL = %q, want %q", c.DatabaseURL, testDatabaseURL)
	}
	if c.ListenDatabaseURL != testDatabaseURL {
		t.Errorf("ListenDatabaseURL = %q, want DATABASE_URL %q", c.ListenDatabaseURL, testDatabaseURL)
	}
}

func TestLoadListenDatabaseURL(t *testing.T) {
	const direct = "postgres://app@db:5432/taskmanager"
	if c := mustLoad(t, devEnv().with("LISTEN_DATABASE_URL", direct), "serve"); c.ListenDatabaseURL != direct {
		t.Errorf("ListenDatabaseURL = %q, want %q", c.ListenDatabaseURL, direct)
	}
	lines := problems(t, devEnv().with("LISTEN_DATABASE_URL", "mysql://db/x"), "serve")
	if len(lines) != 1 || len(linesNaming(lines, "LISTEN_DATABASE_URL")) != 1 {
		t.Errorf("problems = %q, want one naming LISTEN_DATABASE_URL", lines)
	}
}

func TestLoadOverrides(t *testing.T) {
	c := mustLoad(t, devEnv().with(
		"LISTEN_ADDR", " 127.0.0.1:9000 ",
		"ACCESS_TOKEN_TTL", "5m",
		"REFRESH_TOKEN_TTL", "24h",
		"MAX_BODY_BYTES", "2048",
		"REGISTRATION_ENABLED", "false",
		"RATE_LIMIT_ANON", "20/minute",
		"APP_ENV", "Development",
		"LOG_LEVEL", "DEBUG",
	), "serve")
	if c.ListenAddr != "127.0.0.1:9000" {
		t.Errorf("ListenAddr = %q, want 127.0.0.1:9000", c.ListenAddr)
	}
	if c.AccessTokenTTL != 5*time.Minute || c.RefreshTokenTTL != 24*time.Hour {
		t.Errorf("TTLs = %v, %v; want 5m, 24h", c.AccessTokenTTL, c.RefreshTokenTTL)
	}
	if c.MaxBodyBytes != 2048 {
		t.Errorf("MaxBodyBytes = %d, want 2048", c.MaxBodyBytes)
	}
	if c.RegistrationEnabled {
		t.Errorf("RegistrationEnabled = true, want false")
	}
	if want := (Rate{20, time.Minute}); c.RateAnon != want {
		t.Errorf("RateAnon = %v, want %v", c.RateAnon, want)
	}
	if c.Env != "development" || c.LogLevel != "debug" {
		t.Errorf("Env, LogLevel = %q, %q; want development, debug", c.Env, c.LogLevel)
	}
}

func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	e := env{
		"APP_ENV":              "staging",
		"MAX_BODY_BYTES":       "lots",
		"ACCESS_TOKEN_TTL":     "soon",
		"RATE_LIMIT_ANON":      "abc",
		"REGISTRATION_ENABLED": "maybe",
		"TRUSTED_PROXIES":      "garbage",
		// DATABASE_URL and JWT_SIGNING_KEY missing.
	}
	lines := problems(t, e, "serve")
	names := []string{
		"APP_ENV", "MAX_BODY_BYTES", "ACCESS_TOKEN_TTL", "RATE_LIMIT_ANON",
		"REGISTRATION_ENABLED", "TRUSTED_PROXIES", "DATABASE_URL", "JWT_SIGNING_KEY",
	}
	for _, name := range names {
		if got := linesNaming(lines, name); len(got) != 1 {
			t.Errorf("%d lines name %s, want 1:\n%s", len(got), name, strings.Join(lines, "\n"))
		}
	}
	if len(lines) != len(names) {
		t.Errorf("got %d problem lines, want %d:\n%s", len(lines), len(names), strings.Join(lines, "\n"))
	}
	for _, bad := range []string{"staging", "lots", "soon", "abc", "maybe", "garbage"} {
		if !strings.Contains(strings.Join(lines, "\n"), bad) {
			t.Errorf("no line quotes the bad value %q:\n%s", bad, strings.Join(lines, "\n"))
		}
	}
}

func TestLoadDoesNotPrintSecrets(t *testing.T) {
	const shortKey = "hunter2-signing"
	e := env{
		"DATABASE_URL":    "mysql://root:hunter2-db-pass@db/tasks",
		"JWT_SIGNING_KEY": shortKey,
	}
	lines := problems(t, e, "serve")
	all := strings.Join(lines, "\n")
	for _, secret := range []string{shortKey, "hunter2-db-pass"} {
		if strings.Contains(all, secret) {
			t.Errorf("problems print the secret %q:\n%s", secret, all)
		}
	}
	if len(linesNaming(lines, "DATABASE_URL")) != 1 || len(linesNaming(lines, "JWT_SIGNING_KEY")) != 1 {
		t.Errorf("want one line for DATABASE_URL and one for JWT_SIGNING_KEY:\n%s", all)
	}
}

func TestLoadServe(t *testing.T) {
	tests := []loadCase{
		{"minimal development", devEnv(), ""},
		{"no DATABASE_URL", devEnv().with("DATABASE_URL", ""), "DATABASE_URL"},
		{"DATABASE_URL not postgres", devEnv().with("DATABASE_URL", "mysql://u:p@h/db"), "DATABASE_URL"},
		{"DATABASE_URL postgresql scheme", devEnv().with("DATABASE_URL", "postgresql://u:p@h/db"), ""},
		{"no JWT_SIGNING_KEY", devEnv().with("JWT_SIGNING_KEY", ""), "JWT_SIGNING_KEY"},
		{"JWT_SIGNING_KEY of 31 bytes", devEnv().with("JWT_SIGNING_KEY", testSigningKey[:31]), "JWT_SIGNING_KEY"},
		{"access TTL not shorter than refresh", devEnv().with("ACCESS_TOKEN_TTL", "2h", "REFRESH_TOKEN_TTL", "1h"), "ACCESS_TOKEN_TTL"},
		{"zero TTL", devEnv().with("ACCESS_TOKEN_TTL", "0s"), "ACCESS_TOKEN_TTL"},
		{"negative TTL", devEnv().with("REFRESH_TOKEN_TTL", "-1h"), "REFRESH_TOKEN_TTL"},
		{"TTL without unit", devEnv().with("ACCESS_TOKEN_TTL", "15"), "ACCESS_TOKEN_TTL"},
		{"TLS cert without key", devEnv().with("TLS_CERT_FILE", "/etc/tls/cert.pem"), "TLS_KEY_FILE"},
		{"MAX_BODY_BYTES zero", devEnv().with("MAX_BODY_BYTES", "0"), "MAX_BODY_BYTES"},
		{"PASSWORD_HASH_CONCURRENCY zero", devEnv().with("PASSWORD_HASH_CONCURRENCY", "0"), "PASSWORD_HASH_CONCURRENCY"},
		{"LOG_LEVEL unknown", devEnv().with("LOG_LEVEL", "verbose"), "LOG_LEVEL"},
		{"REGISTRATION_ENABLED yes", devEnv().with("REGISTRATION_ENABLED", "yes"), "REGISTRATION_ENABLED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { loadOrRefuse(t, tt.env, tt.want) })
	}
}

func TestLoadProduction(t *testing.T) {
	tests := []loadCase{
		{"all guard rails met", prodEnv(), ""},
		{"upper-case APP_ENV", prodEnv().with("APP_ENV", "PRODUCTION"), ""},
		{"no JWT_SIGNING_KEY", prodEnv().with("JWT_SIGNING_KEY", ""), "JWT_SIGNING_KEY"},
		{"short JWT_SIGNING_KEY", prodEnv().with("JWT_SIGNING_KEY", "changeme"), "JWT_SIGNING_KEY"},
		{"no DATABASE_URL", prodEnv().with("DATABASE_URL", ""), "DATABASE_URL"},
		{"CORS_ALLOW_ALL_ORIGINS", prodEnv().with("CORS_ALLOW_ALL_ORIGINS", "true"), "CORS_ALLOW_ALL_ORIGINS"},
		{"CORS_ALLOW_ALL_ORIGINS=1", prodEnv().with("CORS_ALLOW_ALL_ORIGINS", "1"), "CORS_ALLOW_ALL_ORIGINS"},
		{"CORS_ALLOW_ALL_ORIGINS=false", prodEnv().with("CORS_ALLOW_ALL_ORIGINS", "false"), ""},
		{"empty ALLOWED_HOSTS", prodEnv().with("ALLOWED_HOSTS", ""), "ALLOWED_HOSTS"},
		{"blank ALLOWED_HOSTS", prodEnv().with("ALLOWED_HOSTS", " , ,"), "ALLOWED_HOSTS"},
		{"http origin", prodEnv().with("CORS_ALLOWED_ORIGINS", "http://app.example.com"), "http://app.example.com"},
		{"http origin among https", prodEnv().with("CORS_ALLOWED_ORIGINS", "https://a.example.com,http://b.example.com"), "http://b.example.com"},
		{"neither TLS nor redirect nor proxy", prodEnv().with("SECURE_SSL_REDIRECT", ""), "SECURE_SSL_REDIRECT"},
		{"HTTPS terminated by a trusted proxy", prodEnv().with("SECURE_SSL_REDIRECT", "", "TRUSTED_PROXIES", "10.0.0.0/8"), ""},
		{"HTTPS served directly", prodEnv().with("SECURE_SSL_REDIRECT", "", "TLS_CERT_FILE", "/c.pem", "TLS_KEY_FILE", "/k.pem"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c := loadOrRefuse(t, tt.env, tt.want); c != nil && !c.Production() {
				t.Fatalf("Production() = false, want true")
			}
		})
	}
}

func TestLoadProductionReportsEveryGuardRail(t *testing.T) {
	e := env{
		"APP_ENV":                "production",
		"DATABASE_URL":           testDatabaseURL,
		"JWT_SIGNING_KEY":        "short",
		"CORS_ALLOW_ALL_ORIGINS": "true",
		"CORS_ALLOWED_ORIGINS":   "http://app.example.com",
	}
	lines := problems(t, e, "serve")
	for _, name := range []string{"JWT_SIGNING_KEY", "CORS_ALLOW_ALL_ORIGINS", "ALLOWED_HOSTS", "http://app.example.com", "SECURE_SSL_REDIRECT"} {
		if len(linesNaming(lines, name)) == 0 {
			t.Errorf("no line names %s:\n%s", name, strings.Join(lines, "\n"))
		}
	}
	if len(lines) != 5 {
		t.Errorf("got %d lines, want 5:\n%s", len(lines), strings.Join(lines, "\n"))
	}
}

func TestLoadDevelopmentShortcuts(t *testing.T) {
	// What production refuses, development allows.
	c := mustLoad(t, devEnv().with(
		"CORS_ALLOW_ALL_ORIGINS", "true",
		"CORS_ALLOWED_ORIGINS", "http://localhost:3000",
	), "serve")
	if !c.CORSAllowAllOrigins {
		t.Errorf("CORSAllowAllOrigins = false, want true")
	}
	if want := []string{"http://localhost:3000"}; !slices.Equal(c.CORSAllowedOrigins, want) {
		t.Errorf("CORSAllowedOrigins = %q, want %q", c.CORSAllowedOrigins, want)
	}
}

func TestLoadOrigins(t *testing.T) {
	tests := []struct {
		origins string
		want    []string // nil: refused
	}{
		{"https://app.example.com", []string{"https://app.example.com"}},
		{"https://app.example.com:8443", []string{"https://app.example.com:8443"}},
		{"http://localhost:3000", []string{"http://localhost:3000"}},
		{" https://a.example.com , https://b.example.com ,", []string{"https://a.example.com", "https://b.example.com"}},
		{"https://app.example.com/", nil},
		{"https://app.example.com/app", nil},
		{"https://app.example.com?x=1", nil},
		{"https://app.example.com#top", nil},
		{"https://user:pw@app.example.com", nil},
		{"app.example.com", nil},
		{"ftp://app.example.com", nil},
		{"https://", nil},
		{"*", nil},
		{"https://a.example.com,https://b.example.com/", nil},
	}
	for _, tt := range tests {
		t.Run(tt.origins, func(t *testing.T) {
			refused := ""
			if tt.want == nil {
				refused = "CORS_ALLOWED_ORIGINS"
			}
			c := loadOrRefuse(t, devEnv().with("CORS_ALLOWED_ORIGINS", tt.origins), refused)
			if c != nil && !slices.Equal(c.CORSAllowedOrigins, tt.want) {
				t.Fatalf("CORSAllowedOrigins = %q, want %q", c.CORSAllowedOrigins, tt.want)
			}
		})
	}
}

func TestLoadStarOriginPointsToAllowAll(t *testing.T) {
	lines := problems(t, devEnv().with("CORS_ALLOWED_ORIGINS", "*"), "serve")
	if len(lines) != 1 || !strings.Contains(lines[0], "CORS_ALLOW_ALL_ORIGINS") {
		t.Fatalf("problems = %q, want one line telling to use CORS_ALLOW_ALL_ORIGINS", lines)
	}
}

func TestLoadRates(t *testing.T) {
	tests := []struct {
		value string
		want  Rate // zero: refused
	}{
		{"100/minute", Rate{100, time.Minute}},
		{"5/s", Rate{5, time.Second}},
		{"5/second", Rate{5, time.Second}},
		{"30/min", Rate{30, time.Minute}},
		{"1000/hour", Rate{1000, time.Hour}},
		{"1000/h", Rate{1000, time.Hour}},
		{"10000/day", Rate{10000, 24 * time.Hour}},
		{"100/Minute", Rate{100, time.Minute}},
		{" 100/minute ", Rate{100, time.Minute}},
		{"abc", Rate{}},
		{"100", Rate{}},
		{"100/", Rate{}},
		{"/minute", Rate{}},
		{"0/minute", Rate{}},
		{"-5/minute", Rate{}},
		{"ten/minute", Rate{}},
		{"100/fortnight", Rate{}},
		{"100/minute/extra", Rate{}},
		{"1.5/second", Rate{}},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			refused := ""
			if tt.want == (Rate{}) {
				refused = "RATE_LIMIT_USER"
			}
			c := loadOrRefuse(t, devEnv().with("RATE_LIMIT_USER", tt.value), refused)
			if c != nil && c.RateUser != tt.want {
				t.Fatalf("RateUser = %v, want %v", c.RateUser, tt.want)
			}
		})
	}
}

func TestLoadTrustedProxies(t *testing.T) {
	c := mustLoad(t, devEnv().with("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7 ,::1,2001:db8::/32"), "serve")
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.7/32"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("2001:db8::/32"),
	}
	if !slices.Equal(c.TrustedProxies, want) {
		t.Fatalf("TrustedProxies = %v, want %v", c.TrustedProxies, want)
	}

	trusted := func(ip string) bool {
		a := netip.MustParseAddr(ip)
		return slices.ContainsFunc(c.TrustedProxies, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	for ip, want := range map[string]bool{
		"10.200.3.4":     true,
		"192.168.1.7":    true,
		"192.168.1.8":    false,
		"11.0.0.1":       false,
		"::1":            true,
		"2001:db8::beef": true,
		"2001:db9::1":    false,
	} {
		if got := trusted(ip); got != want {
			t.Errorf("trusted(%s) = %v, want %v", ip, got, want)
		}
	}

	t.Run("host bits masked", func(t *testing.T) {
		c := mustLoad(t, devEnv().with("TRUSTED_PROXIES", "10.1.2.3/8"), "serve")
		if want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}; !slices.Equal(c.TrustedProxies, want) {
			t.Fatalf("TrustedProxies = %v, want %v", c.TrustedProxies, want)
		}
	})

	for _, bad := range []string{"garbage", "10.0.0.0/33", "300.1.1.1", "10.0.0.1/", "example.com"} {
		t.Run(bad, func(t *testing.T) {
			lines := problems(t, devEnv().with("TRUSTED_PROXIES", "10.0.0.0/8,"+bad), "serve")
			if len(lines) != 1 || !strings.Contains(lines[0], "TRUSTED_PROXIES") || !strings.Contains(lines[0], bad) {
				t.Fatalf("problems = %q, want one line naming TRUSTED_PROXIES and %q", lines, bad)
			}
		})
	}
}

func TestLoadMigrate(t *testing.T) {
	t.Run("only DATABASE_URL", func(t *testing.T) {
		c := mustLoad(t, env{"DATABASE_URL": testDatabaseURL}, "migrate")
		if c.DatabaseURL != testDatabaseURL {
			t.Fatalf("DatabaseURL = %q, want %q", c.DatabaseURL, testDatabaseURL)
		}
	})
	t.Run("production, no signing key or hosts", func(t *testing.T) {
		mustLoad(t, env{"APP_ENV": "production", "DATABASE_URL": testDatabaseURL}, "migrate")
	})
	t.Run("serve with the same environment", func(t *testing.T) {
		lines := problems(t, env{"DATABASE_URL": testDatabaseURL}, "serve")
		if len(linesNaming(lines, "JWT_SIGNING_KEY")) != 1 {
			t.Fatalf("problems = %q, want serve to require JWT_SIGNING_KEY", lines)
		}
	})
	t.Run("no DATABASE_URL", func(t *testing.T) {
		lines := problems(t, env{}, "migrate")
		if len(lines) != 1 || !strings.Contains(lines[0], "DATABASE_URL") {
			t.Fatalf("problems = %q, want one line naming DATABASE_URL", lines)
		}
	})
	t.Run("createuser needs DATABASE_URL", func(t *testing.T) {
		lines := problems(t, env{}, "createuser")
		if len(lines) != 1 || !strings.Contains(lines[0], "DATABASE_URL") {
			t.Fatalf("problems = %q, want one line naming DATABASE_URL", lines)
		}
	})
}

// TestOriginsAreNormalised: an upper-case scheme is still plain http in
// production, and origins that could never match are refused.
func TestOriginsAreNormalised(t *testing.T) {
	env := map[string]string{"APP_ENV": "production", "DATABASE_URL": "postgres://db/x", "JWT_SIGNING_KEY": strings.Repeat("s", 40),
		"ALLOWED_HOSTS": "api.example.com", "SECURE_SSL_REDIRECT": "true", "CORS_ALLOWED_ORIGINS": "HTTP://App.Example.com"}
	_, err := Load(func(k string) string { return env[k] }, "serve")
	if err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("an upper-case http origin in production: err = %v, want a plain-http refusal", err)
	}
	env["APP_ENV"] = "development"
	cfg, err := Load(func(k string) string { return env[k] }, "serve")
	if err != nil || cfg.CORSAllowedOrigins[0] != "http://app.example.com" {
		t.Fatalf("origins = %v, %v; want lower case", cfg, err)
	}
	for _, o := range []string{"https://app.example.com?", "https://app.example.com#"} {
		env["CORS_ALLOWED_ORIGINS"] = o
		if _, err := Load(func(k string) string { return env[k] }, "serve"); err == nil {
			t.Errorf("origin %q was accepted", o)
		}
	}
}

func TestProductionRefusesAnyHost(t *testing.T) {
	env := map[string]string{"APP_ENV": "production", "DATABASE_URL": "postgres://db/x", "JWT_SIGNING_KEY": strings.Repeat("s", 40),
		"ALLOWED_HOSTS": "*", "SECURE_SSL_REDIRECT": "true"}
	_, err := Load(func(k string) string { return env[k] }, "serve")
	if err == nil || !strings.Contains(err.Error(), "ALLOWED_HOSTS=*") {
		t.Fatalf("ALLOWED_HOSTS=* in production: err = %v, want a refusal naming it", err)
	}
}

func TestLoadNewSettingsDefaults(t *testing.T) {
	c := mustLoad(t, devEnv(), "serve")
	durations := []struct {
		name      string
		got, want time.Duration
	}{
		{"DBQueryTimeout", c.DBQueryTimeout, 2 * time.Second},
		{"APIKeyDefaultTTL", c.APIKeyDefaultTTL, 2160 * time.Hour},
		{"APIKeyMaxTTL", c.APIKeyMaxTTL, 8760 * time.Hour},
		{"SessionMaxAge", c.SessionMaxAge, 720 * time.Hour},
	}
	for _, d := range durations {
		if d.got != d.want {
			t.Errorf("%s = %v, want %v", d.name, d.got, d.want)
		}
	}
	if c.MaxTasksPerUser != 100000 {
		t.Errorf("MaxTasksPerUser = %d, want 100000", c.MaxTasksPerUser)
	}
	if c.PublicURL != nil {
		t.Errorf("PublicURL = %v, want nil", c.PublicURL)
	}
	if c.PasswordHashLimit > 256 {
		t.Errorf("PasswordHashLimit = %d, want at most 256", c.PasswordHashLimit)
	}
	if c.Warnings != nil {
		t.Errorf("Warnings = %q, want none in development", c.Warnings)
	}

	c = mustLoad(t, devEnv().with(
		"DB_QUERY_TIMEOUT", "500ms",
		"MAX_TASKS_PER_USER", "42",
		"API_KEY_DEFAULT_TTL", "24h",
		"API_KEY_MAX_TTL", "48h",
		"SESSION_MAX_AGE", "12h",
	), "serve")
	if c.DBQueryTimeout != 500*time.Millisecond || c.MaxTasksPerUser != 42 || c.APIKeyDefaultTTL != 24*time.Hour ||
		c.APIKeyMaxTTL != 48*time.Hour || c.SessionMaxAge != 12*time.Hour {
		t.Errorf("overrides = %v, %d, %v, %v, %v; want 500ms, 42, 24h, 48h, 12h",
			c.DBQueryTimeout, c.MaxTasksPerUser, c.APIKeyDefaultTTL, c.APIKeyMaxTTL, c.SessionMaxAge)
	}
}

// TestLoadBounds: every number has a floor and a ceiling, in development
// too, and the problem line names the variable.
func TestLoadBounds(t *testing.T) {
	tests := []struct {
		name, value string
		ok          bool
	}{
		{"MAX_BODY_BYTES", "67108864", true},
		{"MAX_BODY_BYTES", "67108865", false},
		{"MAX_BODY_BYTES", "1099511627776", false}, // 1 TiB
		{"MAX_BODY_BYTES", "99999999999999999999999", false},
		{"PASSWORD_HASH_CONCURRENCY", "256", true},
		{"PASSWORD_HASH_CONCURRENCY", "257", false},
		{"PASSWORD_HASH_CONCURRENCY", "1000000", false},
		{"SECURE_HSTS_SECONDS", "0", true},
		{"SECURE_HSTS_SECONDS", "63072000", true},
		{"SECURE_HSTS_SECONDS", "63072001", false},
		{"SECURE_HSTS_SECONDS", "-1", false},
		{"MAX_TASKS_PER_USER", "1", true},
		{"MAX_TASKS_PER_USER", "10000000", true},
		{"MAX_TASKS_PER_USER", "10000001", false},
		{"MAX_TASKS_PER_USER", "0", false},
		{"ACCESS_TOKEN_TTL", "24h", true},
		{"ACCESS_TOKEN_TTL", "24h1s", false},
		{"ACCESS_TOKEN_TTL", "8760h", false},
		{"REFRESH_TOKEN_TTL", "2160h", true},
		{"REFRESH_TOKEN_TTL", "2161h", false},
		{"REFRESH_TOKEN_TTL", "87600h", false},
		{"SESSION_MAX_AGE", "8760h", true},
		{"SESSION_MAX_AGE", "8761h", false},
		{"DB_QUERY_TIMEOUT", "10ms", true},
		{"DB_QUERY_TIMEOUT", "9ms", false},
		{"DB_QUERY_TIMEOUT", "20s", true},
		{"DB_QUERY_TIMEOUT", "21s", false},
		{"DB_QUERY_TIMEOUT", "2", false},
		{"API_KEY_MAX_TTL", "43800h", true},
		{"API_KEY_MAX_TTL", "43801h", false},
		{"API_KEY_DEFAULT_TTL", "43801h", false},
		{"RATE_LIMIT_ANON", "1000000/second", true},
		{"RATE_LIMIT_ANON", "1000001/second", false},
		{"RATE_LIMIT_USER", "1000001/day", false},
		{"RATE_LIMIT_ANON_SUSTAINED", "1000001/day", false},
		{"RATE_LIMIT_USER_SUSTAINED", "1000001/day", false},
		{"RATE_LIMIT_LOGIN", "1000001/minute", false},
		{"RATE_LIMIT_REGISTER", "1000001/minute", false},
		{"RATE_LIMIT_TOKEN", "1000001/minute", false},
		{"RATE_LIMIT_KEY_CREATE", "1000001/minute", false},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			refused := tt.name
			if tt.ok {
				refused = ""
			}
			loadOrRefuse(t, devEnv().with(tt.name, tt.value), refused)
		})
	}
}

func TestLoadBoundsAreInTheProblemLine(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"MAX_BODY_BYTES", "1099511627776", `MAX_BODY_BYTES must be an integer from 1 to 67108864, got "1099511627776"`},
		{"PASSWORD_HASH_CONCURRENCY", "1000000", `PASSWORD_HASH_CONCURRENCY must be an integer from 1 to 256, got "1000000"`},
		{"SECURE_HSTS_SECONDS", "1e9", `SECURE_HSTS_SECONDS must be an integer from 0 to 63072000, got "1e9"`},
		{"ACCESS_TOKEN_TTL", "8760h", `ACCESS_TOKEN_TTL must be a duration from 1s to 24h, such as 15m or 168h, got "8760h"`},
		{"REFRESH_TOKEN_TTL", "87600h", `REFRESH_TOKEN_TTL must be a duration from 1s to 2160h, such as 15m or 168h, got "87600h"`},
		{"DB_QUERY_TIMEOUT", "1ms", `DB_QUERY_TIMEOUT must be a duration from 10ms to 20s, such as 15m or 168h, got "1ms"`},
		{"RATE_LIMIT_USER", "2000000/minute", `RATE_LIMIT_USER must look like 100/minute: from 1 to 1000000 per second, minute, hour or day, got "2000000/minute"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := problems(t, devEnv().with(tt.name, tt.value), "serve")
			if len(lines) != 1 || lines[0] != tt.want {
				t.Fatalf("problems = %q, want [%q]", lines, tt.want)
			}
		})
	}
}

func TestLoadCutsLongValuesShort(t *testing.T) {
	huge := strings.Repeat("9", 100000)
	for _, name := range []string{"MAX_BODY_BYTES", "ACCESS_TOKEN_TTL", "RATE_LIMIT_ANON", "APP_ENV", "REGISTRATION_ENABLED", "TRUSTED_PROXIES", "CORS_ALLOWED_ORIGINS", "PUBLIC_URL"} {
		t.Run(name, func(t *testing.T) {
			lines := problems(t, devEnv().with(name, huge), "serve")
			if len(lines) != 1 || !strings.Contains(lines[0], name) {
				t.Fatalf("problems = %.300q, want one line naming %s", lines, name)
			}
			if len(lines[0]) > 300 || !strings.Contains(lines[0], "(100000 bytes)") {
				t.Fatalf("line is %d bytes, want the value cut short with its length:\n%.400s", len(lines[0]), lines[0])
			}
		})
	}
	t.Run("multi-byte value is cut between runes", func(t *testing.T) {
		lines := problems(t, devEnv().with("MAX_BODY_BYTES", strings.Repeat("é", 100)), "serve")
		if strings.Contains(lines[0], `\x`) {
			t.Fatalf("line splits a rune: %s", lines[0])
		}
	})
}

func TestLoadRelations(t *testing.T) {
	tests := []loadCase{
		{"API key default equal to max", devEnv().with("API_KEY_DEFAULT_TTL", "8760h"), ""},
		{"API key default over max", devEnv().with("API_KEY_DEFAULT_TTL", "8761h"), "API_KEY_DEFAULT_TTL"},
		{"API key max under default", devEnv().with("API_KEY_MAX_TTL", "720h"), "API_KEY_MAX_TTL"},
		{"session longer than access token", devEnv().with("SESSION_MAX_AGE", "16m"), ""},
		{"session as long as access token", devEnv().with("SESSION_MAX_AGE", "15m"), "SESSION_MAX_AGE"},
		{"session shorter than access token", devEnv().with("SESSION_MAX_AGE", "1h", "ACCESS_TOKEN_TTL", "2h"), "SESSION_MAX_AGE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { loadOrRefuse(t, tt.env, tt.want) })
	}
}

// TestLoadProductionRefusesWeakenedDefences: values that parse but turn a
// defence off are refused in production, accepted at their boundary, and
// still accepted in development.
func TestLoadProductionRefusesWeakenedDefences(t *testing.T) {
	tests := []struct {
		name, value string
		ok          bool // in production
	}{
		{"TRUSTED_PROXIES", "10.0.0.0/8", true},
		{"TRUSTED_PROXIES", "10.0.0.0/7", false},
		{"TRUSTED_PROXIES", "0.0.0.0/0", false},
		{"TRUSTED_PROXIES", "10.0.0.0/8,0.0.0.0/1", false},
		{"TRUSTED_PROXIES", "2001:db8::/32", true},
		{"TRUSTED_PROXIES", "2001:db8::/31", false},
		{"TRUSTED_PROXIES", "::/0", false},
		{"TRUSTED_PROXIES", "::ffff:10.0.0.0/104", true},
		{"TRUSTED_PROXIES", "::ffff:10.0.0.0/103", false},
		{"TRUSTED_PROXIES", "::ffff:0.0.0.0/96", false},
		{"TRUSTED_PROXIES", "::fffe:0:0/95", false}, // narrower than /32, yet holds all of IPv4
		{"CORS_ALLOWED_ORIGINS", "https://*.example.com", false},
		{"CORS_ALLOWED_ORIGINS", "https://app.example.com,https://*", false},
		{"ALLOWED_HOSTS", ".example.com", true},
		{"ALLOWED_HOSTS", "api.example.com,.example.co.uk", true},
		{"ALLOWED_HOSTS", ".com", false},
		{"ALLOWED_HOSTS", ".COM.", false},
		{"ALLOWED_HOSTS", ".co.uk", false},
		{"ALLOWED_HOSTS", ".github.io", false},
		{"ALLOWED_HOSTS", "api.example.com,.", false},
		{"ACCESS_TOKEN_TTL", "1h", true},
		{"ACCESS_TOKEN_TTL", "1h0m1s", false},
		{"ACCESS_TOKEN_TTL", "2h", false},
		{"PUBLIC_URL", "https://api.example.com", true},
		{"PUBLIC_URL", "http://api.example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			e := prodEnv().with(tt.name, tt.value)
			if tt.ok {
				mustLoad(t, e, "serve")
			} else {
				lines := problems(t, e, "serve")
				if len(lines) != 1 || !strings.Contains(lines[0], tt.name) || !strings.Contains(lines[0], "production") {
					t.Fatalf("problems = %q, want one line naming %s and production", lines, tt.name)
				}
			}
			// Legal in development (without the redirect, which a plain-HTTP
			// PUBLIC_URL would turn into a loop anywhere).
			mustLoad(t, e.with("APP_ENV", "development", "SECURE_SSL_REDIRECT", "false"), "serve")
		})
	}
}

func TestLoadProductionRefusalsOneLineEach(t *testing.T) {
	lines := problems(t, prodEnv().with(
		"TRUSTED_PROXIES", "0.0.0.0/0,::/0",
		"CORS_ALLOWED_ORIGINS", "https://*.example.com",
		"ALLOWED_HOSTS", ".com",
		"ACCESS_TOKEN_TTL", "2h",
	), "serve")
	for name, n := range map[string]int{"TRUSTED_PROXIES": 2, "CORS_ALLOWED_ORIGINS": 1, "ALLOWED_HOSTS": 1, "ACCESS_TOKEN_TTL": 1} {
		if got := len(linesNaming(lines, name)); got != n {
			t.Errorf("%d lines name %s, want %d:\n%s", got, name, n, strings.Join(lines, "\n"))
		}
	}
	if len(lines) != 5 {
		t.Errorf("got %d lines, want 5:\n%s", len(lines), strings.Join(lines, "\n"))
	}
}

func TestLoadDevelopmentWildcardOrigin(t *testing.T) {
	c := mustLoad(t, devEnv().with("CORS_ALLOWED_ORIGINS", "https://*.Example.com"), "serve")
	if want := []string{"https://*.example.com"}; !slices.Equal(c.CORSAllowedOrigins, want) {
		t.Fatalf("CORSAllowedOrigins = %q, want %q", c.CORSAllowedOrigins, want)
	}
	lines := problems(t, devEnv().with("CORS_ALLOWED_ORIGINS", "https://*.*.example.com"), "serve")
	if len(lines) != 1 || !strings.Contains(lines[0], "CORS_ALLOWED_ORIGINS") {
		t.Fatalf("problems = %q, want one line refusing two wildcards", lines)
	}
}

func TestLoadTrustedProxiesMappedIPv4(t *testing.T) {
	c := mustLoad(t, devEnv().with("TRUSTED_PROXIES", "::ffff:10.1.2.3/104,::ffff:192.168.1.7"), "serve")
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32")}
	if !slices.Equal(c.TrustedProxies, want) {
		t.Fatalf("TrustedProxies = %v, want %v", c.TrustedProxies, want)
	}
}

func TestLoadAllowedHosts(t *testing.T) {
	tests := []struct {
		name string
		env  env
		want []string
	}{
		{"development default", devEnv(), []string{"localhost", "127.0.0.1", "[::1]"}},
		{"blank is unset", devEnv().with("ALLOWED_HOSTS", " , "), []string{"localhost", "127.0.0.1", "[::1]"}},
		{"with PUBLIC_URL", devEnv().with("PUBLIC_URL", "https://API.example.com:8443/"), []string{"localhost", "127.0.0.1", "[::1]", "api.example.com"}},
		{"with an IPv6 PUBLIC_URL", devEnv().with("PUBLIC_URL", "http://[2001:db8::1]:8000"), []string{"localhost", "127.0.0.1", "[::1]", "[2001:db8::1]"}},
		{"explicit list", devEnv().with("ALLOWED_HOSTS", "api.test, .example.com", "PUBLIC_URL", "https://other.example.org"), []string{"api.test", ".example.com"}},
		{"explicit any in development", devEnv().with("ALLOWED_HOSTS", "*"), []string{"*"}},
		{"production list", prodEnv(), []string{"api.example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.env, "serve")
			if !slices.Equal(c.AllowedHosts, tt.want) {
				t.Fatalf("AllowedHosts = %q, want %q", c.AllowedHosts, tt.want)
			}
		})
	}
	t.Run("production still requires it with PUBLIC_URL", func(t *testing.T) {
		lines := problems(t, prodEnv().with("ALLOWED_HOSTS", "", "PUBLIC_URL", "https://api.example.com"), "serve")
		if len(lines) != 1 || !strings.Contains(lines[0], "ALLOWED_HOSTS") {
			t.Fatalf("problems = %q, want one line naming ALLOWED_HOSTS", lines)
		}
	})
}

func TestLoadPublicURL(t *testing.T) {
	tests := []struct {
		value string
		want  string // String() of the stored URL; "" for refused
	}{
		{"https://api.example.com", "https://api.example.com"},
		{"https://api.example.com/", "https://api.example.com"},
		{"HTTPS://Api.Example.com:8443", "https://api.example.com:8443"},
		{"http://localhost:8000", "http://localhost:8000"},
		{"http://[::1]:8000/", "http://[::1]:8000"},
		{"ftp://api.example.com", ""},
		{"api.example.com", ""},
		{"https://", ""},
		{"https://:443", ""},
		{"https:api.example.com", ""},
		{"https://api.example.com/v1", ""},
		{"https://api.example.com//", ""},
		{"https://api.example.com?", ""},
		{"https://api.example.com?x=1", ""},
		{"https://api.example.com#top", ""},
		{"https://user@api.example.com", ""},
		{"https://user:pw@api.example.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			e := devEnv().with("PUBLIC_URL", tt.value)
			if tt.want == "" {
				lines := problems(t, e, "serve")
				if len(lines) != 1 || !strings.Contains(lines[0], "PUBLIC_URL") {
					t.Fatalf("problems = %q, want one line naming PUBLIC_URL", lines)
				}
				return
			}
			c := mustLoad(t, e, "serve")
			if c.PublicURL == nil || c.PublicURL.String() != tt.want || c.PublicURL.Path != "" {
				t.Fatalf("PublicURL = %v, want %s with an empty path", c.PublicURL, tt.want)
			}
		})
	}
}

// TestLoadDoesNotPrintURLPasswords: problem lines about a URL mask the
// password it holds.
func TestLoadDoesNotPrintURLPasswords(t *testing.T) {
	const secret = "hunter2-url-pass"
	for _, kv := range [][2]string{
		{"PUBLIC_URL", "https://admin:" + secret + "@api.example.com"},
		{"PUBLIC_URL", "https://admin:" + secret + "@api.example.com/%zz"},
		{"CORS_ALLOWED_ORIGINS", "https://admin:" + secret + "@app.example.com"},
		{"CORS_ALLOWED_ORIGINS", "https://admin:" + secret + "@app.example.com/%zz"},
		{"REDIS_URL", "http://:" + secret + "@cache.internal"},
	} {
		t.Run(kv[0], func(t *testing.T) {
			lines := problems(t, devEnv().with(kv[0], kv[1]), "serve")
			if len(lines) != 1 || !strings.Contains(lines[0], kv[0]) {
				t.Fatalf("problems = %q, want one line naming %s", lines, kv[0])
			}
			if strings.Contains(lines[0], secret) {
				t.Fatalf("problem prints the password: %s", lines[0])
			}
		})
	}
}

func TestLoadWarnings(t *testing.T) {
	const secret = "s3cret-warn-pass"
	tests := []struct {
		name string
		env  env
		want []string // the variables the warnings name, in order
	}{
		{"acceptance baseline", prodEnv().with("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/taskmanager?sslmode=disable",
			"JWT_SIGNING_KEY", strings.Repeat("ab", 32)), nil},
		{"redis:// to a remote host", prodEnv().with("REDIS_URL", "redis://:"+secret+"@cache.internal:6379/0"), []string{"REDIS_URL"}},
		{"rediss:// to a remote host", prodEnv().with("REDIS_URL", "rediss://:"+secret+"@cache.internal:6380"), nil},
		{"redis:// to localhost", prodEnv().with("REDIS_URL", "redis://localhost:6379"), nil},
		{"redis:// to 127.0.0.2", prodEnv().with("REDIS_URL", "redis://127.0.0.2:6379"), nil},
		{"redis:// to ::1", prodEnv().with("REDIS_URL", "redis://[::1]:6379"), nil},
		{"redis over a unix socket", prodEnv().with("REDIS_URL", "unix:///run/redis.sock"), nil},
		{"sslmode=disable to a remote host", prodEnv().with("DATABASE_URL", "postgres://app:"+secret+"@db.internal:5432/tasks?sslmode=disable"), []string{"DATABASE_URL"}},
		{"sslmode=disable to a remote IPv6 host", prodEnv().with("DATABASE_URL", "postgres://app:"+secret+"@[2001:db8::5]:5432/tasks?sslmode=disable"), []string{"DATABASE_URL"}},
		{"sslmode=disable to localhost", prodEnv().with("DATABASE_URL", "postgres://app:"+secret+"@localhost/tasks?sslmode=disable"), nil},
		{"sslmode=disable to a socket", prodEnv().with("DATABASE_URL", "postgres://app@/tasks?host=/var/run/postgresql&sslmode=disable"), nil},
		{"host parameter overrides the URL host", prodEnv().with("DATABASE_URL", "postgres://app@localhost/tasks?host=db.internal&sslmode=disable"), []string{"DATABASE_URL"}},
		{"sslmode=require to a remote host", prodEnv().with("DATABASE_URL", "postgres://app:"+secret+"@db.internal/tasks?sslmode=require"), nil},
		{"sslmode from PGSSLMODE", prodEnv().with("PGSSLMODE", "disable"), []string{"DATABASE_URL"}},
		{"both", prodEnv().with("REDIS_URL", "redis://cache.internal", "DATABASE_URL", "postgres://app:"+secret+"@10.0.0.5/tasks?sslmode=disable"), []string{"REDIS_URL", "DATABASE_URL"}},
		{"metrics on every interface", prodEnv().with("METRICS_ADDR", ":9464"), []string{"METRICS_ADDR"}},
		{"metrics on 0.0.0.0", prodEnv().with("METRICS_ADDR", "0.0.0.0:9464"), []string{"METRICS_ADDR"}},
		{"metrics on a private address", prodEnv().with("METRICS_ADDR", "10.0.0.5:9464"), nil},
		{"passkeys on localhost", prodEnv().with("WEBAUTHN_RP_ID", "", "WEBAUTHN_ORIGINS", ""), []string{"WEBAUTHN_RP_ID"}},
		{"development", devEnv().with("REDIS_URL", "redis://cache.internal", "DATABASE_URL", "postgres://app:"+secret+"@10.0.0.5/tasks?sslmode=disable"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.env, "serve")
			if len(c.Warnings) != len(tt.want) {
				t.Fatalf("Warnings = %q, want lines naming %q", c.Warnings, tt.want)
			}
			for i, w := range c.Warnings {
				if !strings.Contains(w, tt.want[i]) || strings.Contains(w, "\n") {
					t.Errorf("warning %d = %q, want one line naming %s", i, w, tt.want[i])
				}
				for _, leak := range []string{secret, "cache.internal", "db.internal", "10.0.0.5", "2001:db8"} {
					if strings.Contains(w, leak) {
						t.Errorf("warning %q prints %q from the URL", w, leak)
					}
				}
			}
		})
	}
}

func TestPostgresInClear(t *testing.T) {
	tests := []struct {
		dsn   string
		env   env
		clear bool
	}{
		{"postgres://app:pw@db.internal/tasks?sslmode=disable", nil, true},
		{"postgresql://app:pw@127.0.0.1:5432/tasks?sslmode=disable", nil, false},
		{"postgres:///tasks?sslmode=disable", nil, false},
		{"postgres://db.internal/tasks", nil, false},
		{"postgres://db.internal/tasks?sslmode=disable&sslmode=require", nil, false},
		{"postgres://db1.internal,localhost/tasks?sslmode=disable", nil, true},
		{"postgres://[::1]/tasks?sslmode=disable", nil, false},
		{"postgres:///tasks?host=/var/run/postgresql&sslmode=disable", nil, false},
		{"postgres:///tasks?sslmode=disable", env{"PGHOST": "db.internal"}, true},
		{"postgres://db.internal/tasks", env{"PGSSLMODE": "disable"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			if got := postgresInClear(tt.dsn, tt.env.get); got != tt.clear {
				t.Fatalf("postgresInClear(%q) = %v, want %v", tt.dsn, got, tt.clear)
			}
		})
	}
}

// TestPlainPublicURLCannotBeTheRedirectTarget: redirecting plain HTTP to a
// plain-HTTP PUBLIC_URL would loop for ever.
func TestPlainPublicURLCannotBeTheRedirectTarget(t *testing.T) {
	_, err := Load(devEnv().with("PUBLIC_URL", "http://api.example.com", "SECURE_SSL_REDIRECT", "true").get, "serve")
	if err == nil || !strings.Contains(err.Error(), "PUBLIC_URL") || !strings.Contains(err.Error(), "SECURE_SSL_REDIRECT") {
		t.Fatalf("Load = %v, want a problem naming PUBLIC_URL and SECURE_SSL_REDIRECT", err)
	}
	if _, err := Load(devEnv().with("PUBLIC_URL", "https://api.example.com", "SECURE_SSL_REDIRECT", "true").get, "serve"); err != nil {
		t.Fatalf("https PUBLIC_URL with the redirect: %v", err)
	}
	c, err := Load(devEnv().with("RATE_LIMIT_LOGIN", "100/minute").get, "serve")
	if err != nil || c.RateLogin.Limit != 100 || c.RateLoginFailures != (Rate{10, time.Minute}) || c.RateLoginUsername != (Rate{100, time.Hour}) {
		t.Fatalf("login budgets = %v, %v, %v (%v); want 100/min, 10/min, 100/h", c.RateLogin, c.RateLoginFailures, c.RateLoginUsername, err)
	}
}

// TestLoadMetricsAndAudit: metrics listen on loopback unless told, and set
// but empty (as Getenv reads the environment) or "off" they are off; the
// audit trail keeps 90 days unless told.
func TestLoadMetricsAndAudit(t *testing.T) {
	c := mustLoad(t, devEnv(), "serve")
	if c.MetricsAddr != "127.0.0.1:9464" || c.AuditRetention != 90*24*time.Hour {
		t.Fatalf("defaults: METRICS_ADDR %q, AUDIT_RETENTION %v", c.MetricsAddr, c.AuditRetention)
	}
	if c := mustLoad(t, devEnv().with("METRICS_ADDR", "off"), "serve"); c.MetricsAddr != "" {
		t.Fatalf("METRICS_ADDR=off: %q, want metrics off", c.MetricsAddr)
	}
	base := devEnv()
	lookup := func(name string) (string, bool) {
		if name == "METRICS_ADDR" {
			return "", true
		}
		v, ok := base[name]
		return v, ok
	}
	if c, err := Load(Getenv(lookup), "serve"); err != nil || c.MetricsAddr != "" {
		t.Fatalf("METRICS_ADDR set but empty: %v, %v; want metrics off", c, err)
	}
	if c := mustLoad(t, devEnv().with("METRICS_ADDR", "10.0.0.5:9464", "AUDIT_RETENTION", "720h"), "serve"); c.MetricsAddr != "10.0.0.5:9464" || c.AuditRetention != 30*24*time.Hour {
		t.Fatalf("overrides: %q, %v", c.MetricsAddr, c.AuditRetention)
	}
	loadOrRefuse(t, devEnv().with("METRICS_ADDR", "9464"), "METRICS_ADDR")
	loadOrRefuse(t, devEnv().with("AUDIT_RETENTION", "100000h"), "AUDIT_RETENTION")
}

// TestLoadWebAuthn: the passkeys' relying party is a host name, from
// PUBLIC_URL unless set, and its origins lie on it.
func TestLoadWebAuthn(t *testing.T) {
	tests := []struct {
		name    string
		env     env
		rpID    string
		origins []string
		problem bool
	}{
		{"development", devEnv().with("LISTEN_ADDR", "127.0.0.1:8000"), "localhost", []string{"http://localhost:8000"}, false},
		{"from PUBLIC_URL", devEnv().with("PUBLIC_URL", "https://api.example.com"), "api.example.com", []string{"https://api.example.com"}, false},
		{"an IP PUBLIC_URL falls back to localhost", devEnv().with("PUBLIC_URL", "http://127.0.0.1:8000", "LISTEN_ADDR", ":9000"),
			"localhost", []string{"http://localhost:9000"}, false},
		{"set", devEnv().with("WEBAUTHN_RP_ID", "Example.com", "WEBAUTHN_ORIGINS", "https://app.example.com,https://example.com"),
			"example.com", []string{"https://app.example.com", "https://example.com"}, false},
		{"an IP address", devEnv().with("WEBAUTHN_RP_ID", "127.0.0.1"), "", nil, true},
		{"an IPv6 address", devEnv().with("WEBAUTHN_RP_ID", "[::1]"), "", nil, true},
		{"a URL", devEnv().with("WEBAUTHN_RP_ID", "https://example.com"), "", nil, true},
		{"an origin elsewhere", devEnv().with("WEBAUTHN_RP_ID", "example.com", "WEBAUTHN_ORIGINS", "https://evil-example.com"), "", nil, true},
		{"not an origin", devEnv().with("WEBAUTHN_RP_ID", "example.com", "WEBAUTHN_ORIGINS", "https://example.com/login"), "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.problem {
				lines := problems(t, tt.env, "serve")
				if len(lines) != 1 || !strings.Contains(lines[0], "WEBAUTHN_") {
					t.Fatalf("problems = %q, want one line naming WEBAUTHN_RP_ID or WEBAUTHN_ORIGINS", lines)
				}
				return
			}
			c := mustLoad(t, tt.env, "serve")
			if c.WebAuthnRPID != tt.rpID || !slices.Equal(c.WebAuthnOrigins, tt.origins) {
				t.Fatalf("WebAuthn = %q %q, want %q %q", c.WebAuthnRPID, c.WebAuthnOrigins, tt.rpID, tt.origins)
			}
		})
	}
}
