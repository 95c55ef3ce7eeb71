package httpapi

import (
	"net/netip"
	"net/url"
	"time"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/config"
	"github.com/acme/taskmanager/internal/passkey"
)

// Config is what the HTTP layer reads of the process configuration
// (config.Config documents each setting). ConfigFrom fills it.
type Config struct {
	AllowedHosts        []string
	PublicURL           *url.URL // nil when unset
	TrustedProxies      []netip.Prefix
	CORSAllowedOrigins  []string
	CORSAllowAllOrigins bool
	SecureSSLRedirect   bool
	HSTSSeconds         int

	MaxBodyBytes        int64
	RegistrationEnabled bool
	DocsEnabled         bool
	APIKeyDefaultTTL    time.Duration
	APIKeyMaxTTL        time.Duration

	Rates Rates
}

// Rates are the budgets of the throttle; each is named after its limiter.
type Rates struct {
	Anon, User                   config.Rate
	AnonSustained, UserSustained *config.Rate // nil: no second window
	Login                        config.Rate  // every /api/token/ request, per IP
	LoginFailures                config.Rate  // failed password checks per (username, IP)
	LoginUsername                config.Rate  // failed password checks per username, from any IP
	Register                     config.Rate
	Token                        config.Rate // refresh, verify, blacklist, per IP
	KeyCreate                    config.Rate // per user
}

// ConfigFrom picks the HTTP layer's settings out of the process
// configuration. serve and the tests both build a Server through it, so
// they cannot drift apart.
func ConfigFrom(c *config.Config) Config {
	return Config{
		AllowedHosts:        c.AllowedHosts,
		PublicURL:           c.PublicURL,
		TrustedProxies:      c.TrustedProxies,
		CORSAllowedOrigins:  c.CORSAllowedOrigins,
		CORSAllowAllOrigins: c.CORSAllowAllOrigins,
		SecureSSLRedirect:   c.SecureSSLRedirect,
		HSTSSeconds:         c.HSTSSeconds,
		MaxBodyBytes:        c.MaxBodyBytes,
		RegistrationEnabled: c.RegistrationEnabled,
		DocsEnabled:         c.DocsEnabled,
		APIKeyDefaultTTL:    c.APIKeyDefaultTTL,
		APIKeyMaxTTL:        c.APIKeyMaxTTL,
		Rates: Rates{
			Anon: c.RateAnon, User: c.RateUser,
			AnonSustained: c.RateAnonSustained, UserSustained: c.RateUserSustained,
			Login: c.RateLogin, LoginFailures: c.RateLoginFailures, LoginUsername: c.RateLoginUsername,
			Register: c.RateRegister, Token: c.RateToken, KeyCreate: c.RateKeyCreate,
		},
	}
}

// TokenConfig is the token signer's part of the process configuration:
// serve builds the signer from it and passes it in (Deps.Tokens), and so do
// the tests.
func TokenConfig(c *config.Config) auth.TokenConfig {
	return auth.TokenConfig{
		Key:                c.JWTSigningKey,
		PrivateKey:         c.JWTPrivateKey,
		PreviousKeys:       c.JWTPreviousSigningKeys,
		PreviousPublicKeys: c.JWTPreviousPublicKeys,
		Issuer:             c.JWTIssuer,
		Audience:           c.JWTAudience,
		AccessTTL:          c.AccessTokenTTL,
		RefreshTTL:         c.RefreshTokenTTL,
		SessionMaxAge:      c.SessionMaxAge,
		RSAKey:             c.OAuthRSAKey,
		PreviousRSAKeys:    c.OAuthPreviousRSAKeys,
	}
}

// SecretBox is the box that seals second-factor secrets under
// MFA_ENCRYPTION_KEY; nil without a key (enrollment then answers 503).
func SecretBox(c *config.Config) *auth.SecretBox {
	if c.MFAEncryptionKey == nil {
		return nil
	}
	b, err := auth.NewSecretBox(c.MFAEncryptionKey, c.MFAPreviousEncryptionKeys...)
	if err != nil {
		return nil // config.Load checked every key's length
	}
	return b
}

// RelyingParty is the passkeys' relying party, WEBAUTHN_RP_ID with
// WEBAUTHN_ORIGINS; nil when go-webauthn refuses them (passkeys then
// answer 503), which config.Load has already ruled out.
func RelyingParty(c *config.Config) *passkey.RP {
	rp, err := passkey.New(c.WebAuthnRPID, serviceName, c.WebAuthnOrigins)
	if err != nil {
		return nil
	}
	return rp
}
