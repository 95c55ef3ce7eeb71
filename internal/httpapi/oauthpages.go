package httpapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/task"
)

//go:embed pages/*.html pages/style.css pages/passkey.js
var pageFiles embed.FS

var (
	pages     = template.Must(template.ParseFS(pageFiles, "pages/*.html"))
	styleCSS  = func() []byte { b, _ := pageFiles.ReadFile("pages/style.css"); return b }()
	passkeyJS = func() []byte { b, _ := pageFiles.ReadFile("pages/passkey.js"); return b }()
)

// flowCookie carries the sign-in flow's browser secret: the CSRF tokens of
// its forms are derived from it, and the auth request records its hash at
// sign-in, so consent is accepted only from the browser that signed in.
const flowCookie = "__Host-tm_oauth"

// scopeWords says what each scope lets an application do, for the consent page.
var scopeWords = map[string]string{
	task.ScopeTasksRead:     "See your tasks",
	task.ScopeTasksWrite:    "Create, change and delete your tasks",
	task.ScopeOpenID:        "Know who you are on Task Manager",
	task.ScopeProfile:       "See your username",
	task.ScopeEmail:         "See your email address",
	task.ScopeOfflineAccess: "Keep this access while you are away, until you withdraw it",
}

// pageCSP is the policy of the sign-in and consent pages: no script at
// all, our stylesheet only, never framed, and forms that post to us and
// whose redirect may go on to the client (browsers apply form-action to
// the redirects that follow a form post).
// A page with a passkey button also loads the one script file.
func pageCSP(redirectURI string, script bool) string {
	action := "'self'"
	if u, err := url.Parse(redirectURI); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		action += " " + u.Scheme + "://" + u.Host
	}
	csp := "default-src 'none'; style-src 'self'; "
	if script {
		csp += "script-src 'self'; "
	}
	return csp + "frame-ancestors 'none'; form-action " + action
}

type pageData struct {
	Title    string
	App      string
	Error    string
	CSRF     string
	ID       string
	Username string
	Scopes   []string
	// MFAToken, on the sign-in page, asks for the second factor of the
	// login it names; PasskeyOptions, with it, offer the user's passkeys
	// (WebAuthn request options, JSON).
	MFAToken       string
	PasskeyOptions string
}

// page renders a server page. Errors on pages never echo raw input.
func (s *Server) page(w http.ResponseWriter, r *http.Request, status int, name, redirectURI string, d pageData) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, d); err != nil {
		s.error(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP(redirectURI, d.PasskeyOptions != ""))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.page(w, r, status, "error.html", "", pageData{Title: "Cannot continue", Error: msg})
}

// handlePasskeyScript handles GET /oauth/assets/passkey.js, the sign-in
// page's passkey button.
func (s *Server) handlePasskeyScript(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(passkeyJS)
}

// handleStyle handles GET /oauth/assets/style.css, the pages' one stylesheet.
func (s *Server) handleStyle(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(styleCSS)
}

// withIss adds the authorization server's issuer to an authorization
// response (RFC 9207), which the library leaves out.
func withIss(location, iss string) string {
	u, err := url.Parse(location)
	if err != nil {
		return location
	}
	q := u.Query()
	q.Set("iss", iss)
	u.RawQuery = q.Encode()
	return u.String()
}

// redirectError sends an authorization error to a redirect URI that was
// checked against the client's (RFC 6749 4.1.2.1), with state and iss.
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state, code, desc string) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "The application's request is invalid.")
		return
	}
	q := u.Query()
	q.Set("error", code)
	q.Set("error_description", desc)
	if state != "" {
		q.Set("state", state)
	}
	q.Set("iss", s.oauthIssuer(r))
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

// pkceChallenge is an S256 challenge: the base64url SHA-256 of a verifier.
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// handleAuthorize handles GET /oauth/authorize. It refuses what OAuth 2.1
// refuses before the library sees the request: an unknown client or an
// unregistered redirect URI get an error page (no redirect); everything
// else wrong is redirected to the checked URI: any response type but code,
// a missing or plain PKCE challenge, scopes the client may not ask for.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for _, v := range q {
		if len(v) > 1 {
			s.errorPage(w, r, http.StatusBadRequest, "The application's request is invalid: a parameter is repeated.")
			return
		}
	}
	c, err := s.oauth.storage.client(r.Context(), q.Get("client_id"))
	if err != nil {
		var oe *oidc.Error
		if errors.As(err, &oe) && oe.ErrorType == oidc.InvalidClient {
			s.errorPage(w, r, http.StatusBadRequest, "This application is not registered here.")
			return
		}
		s.errorPage(w, r, http.StatusServiceUnavailable, "Service temporarily unavailable.")
		return
	}
	redirect := q.Get("redirect_uri")
	if !c.RedirectAllowed(redirect) {
		s.errorPage(w, r, http.StatusBadRequest, "The address this application asked to return to is not registered for it.")
		return
	}
	state := q.Get("state")
	fail := func(code, desc string) { s.redirectError(w, r, redirect, state, code, desc) }
	scopes := strings.Fields(q.Get("scope"))
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "Only response_type=code is supported.")
	case q.Get("response_mode") != "" && q.Get("response_mode") != "query":
		fail(string(oidc.InvalidRequest), "Only response_mode=query is supported.")
	case !c.Allows(task.GrantAuthorizationCode):
		fail(string(oidc.UnauthorizedClient), "The client is not registered for the authorization code grant.")
	case q.Get("code_challenge") == "":
		fail(string(oidc.InvalidRequest), "PKCE is required: send code_challenge and code_challenge_method=S256.")
	case q.Get("code_challenge_method") != "S256":
		fail(string(oidc.InvalidRequest), "code_challenge_method must be S256.")
	case !pkceChallenge.MatchString(q.Get("code_challenge")):
		fail(string(oidc.InvalidRequest), "code_challenge must be the base64url SHA-256 of the verifier.")
	case q.Has("request") || q.Has("request_uri"):
		fail(string(oidc.RequestNotSupported), "Request objects are not supported.")
	case len(scopes) == 0:
		fail(string(oidc.InvalidScope), "Ask for at least one scope.")
	case slices.ContainsFunc(scopes, func(sc string) bool { return !slices.Contains(c.Scopes, sc) }):
		fail(string(oidc.InvalidScope), "The client may not ask for one of these scopes.")
	case len(state) > 1024 || len(q.Get("nonce")) > 1024:
		fail(string(oidc.InvalidRequest), "state and nonce are limited to 1024 characters.")
	default:
		ctx := context.WithValue(r.Context(), redirectKey{}, redirect)
		s.oauth.serveAuthorization(w, r.WithContext(ctx), redirect)
	}
}

// serveAuthorization runs the library's authorize step and fixes its
// answer: its redirect to our sign-in page becomes that page (one round
// trip less), iss is added to a redirect to the client (RFC 9207), and a
// plain-text error becomes our error page.
func (o *oauthServer) serveAuthorization(w http.ResponseWriter, r *http.Request, redirectURI string) {
	rec := newRecorder()
	o.serveProvider(rec, r)
	o.s.finishAuthorization(w, r, rec, redirectURI)
}

func (s *Server) finishAuthorization(w http.ResponseWriter, r *http.Request, rec *recorder, redirectURI string) {
	loc := rec.h.Get("Location")
	switch {
	case rec.status >= 300 && rec.status < 400 && strings.HasPrefix(loc, oauthLoginPath+"?id="):
		s.showLogin(w, r, strings.TrimPrefix(loc, oauthLoginPath+"?id="))
	case rec.status >= 300 && rec.status < 400 && sameEndpoint(loc, redirectURI):
		w.Header().Set("Location", withIss(loc, s.oauthIssuer(r)))
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusFound)
	case rec.status >= 500 || rec.status < 400:
		s.log.ErrorContext(r.Context(), "oauth authorization failed", "request_id", info(r.Context()).id,
			"status", rec.status, "body", truncate(rec.body.String(), 500))
		s.errorPage(w, r, http.StatusInternalServerError, "Internal server error.")
	default:
		s.errorPage(w, r, http.StatusBadRequest, "This sign-in request is invalid or has expired.")
	}
}

// sameEndpoint reports whether loc goes to the redirect URI (its query aside).
func sameEndpoint(loc, redirectURI string) bool {
	a, err1 := url.Parse(loc)
	b, err2 := url.Parse(redirectURI)
	return err1 == nil && err2 == nil && redirectURI != "" && a.Scheme == b.Scheme && a.Host == b.Host && a.Path == b.Path
}

// answerClient sends the browser back to the client with a code, once the
// user has signed in and consented: the library's authorization response.
func (s *Server) answerClient(w http.ResponseWriter, r *http.Request, a *task.AuthRequest) {
	ar, err := s.oauth.storage.AuthRequestByID(r.Context(), a.ID.String())
	if err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "This sign-in request is invalid or has expired.")
		return
	}
	rec := newRecorder()
	ctx := op.ContextWithIssuer(r.Context(), s.oauthIssuer(r))
	op.AuthResponse(ar, s.oauth.provider, rec, r.WithContext(ctx))
	s.finishAuthorization(w, r, rec, a.RedirectURI)
}

// serveOAuthJSON handles the JSON end points of the library (token,
// introspect, revoke, userinfo), keeping their RFC 6749 error shape but
// making every error JSON and no 5xx tell its cause.
func (s *Server) serveOAuthJSON(w http.ResponseWriter, r *http.Request) {
	rec := newRecorder()
	s.oauth.serveProvider(rec, r)
	h := w.Header()
	for k, v := range rec.h {
		h[k] = v
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", jsonCSP)
	userinfo := strings.HasSuffix(r.URL.Path, "userinfo")
	switch ct := rec.h.Get("Content-Type"); {
	case userinfo && rec.status == http.StatusForbidden:
		// The library answers a token whose grant is gone (or that acts
		// for no user) 403; RFC 6750 3.1 calls that invalid_token, 401.
		h.Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="The access token is invalid, expired or revoked."`)
		s.oauthError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid, expired or revoked.")
	case rec.status >= 500:
		s.log.ErrorContext(r.Context(), "oauth request failed", "request_id", info(r.Context()).id, "status", rec.status, "body", truncate(rec.body.String(), 500))
		s.oauthError(w, http.StatusInternalServerError, "server_error", "Internal server error.")
	case rec.status >= 400 && !strings.HasPrefix(ct, "application/json"):
		switch {
		case rec.status == http.StatusUnauthorized && userinfo:
			h.Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="The access token is invalid, expired or revoked."`)
			s.oauthError(w, rec.status, "invalid_token", "The access token is invalid, expired or revoked.")
		case rec.status == http.StatusUnauthorized:
			s.oauthError(w, rec.status, "invalid_client", "Client authentication failed.")
		default:
			s.oauthError(w, http.StatusBadRequest, "invalid_request", "The request is invalid.")
		}
	default:
		if rec.body.Len() == 0 {
			h.Del("Content-Type") // the library labels revoke's empty answer JSON
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	}
}

// oauthError writes an RFC 6749 error.
func (s *Server) oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Del("Content-Length")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// recorder buffers an answer of the library so it can be fixed up.
type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder                    { return &recorder{h: http.Header{}, status: http.StatusOK} }
func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

// handleDiscovery handles GET /.well-known/openid-configuration and
// /.well-known/oauth-authorization-server (RFC 8414): the library's
// metadata, less what we do not offer, plus RFC 9207's flag.
func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	ctx := op.ContextWithIssuer(r.Context(), s.oauthIssuer(r))
	d := op.CreateDiscoveryConfig(ctx, s.oauth.provider, s.oauth.storage)
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials}
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.ResponseModesSupported = []string{"query"}
	d.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	d.ScopesSupported = task.OAuthScopes
	d.ClaimsSupported = []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "at_hash", "azp",
		"client_id", "scope", "preferred_username", "name", "email", "email_verified"}
	d.TokenEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
	d.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	d.RevocationEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
	d.TokenEndpointAuthSigningAlgValuesSupported = nil
	d.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	d.RevocationEndpointAuthSigningAlgValuesSupported = nil
	d.RequestObjectSigningAlgValuesSupported = nil
	d.EndSessionEndpoint, d.DeviceAuthorizationEndpoint, d.CheckSessionIframe = "", "", ""
	raw, err := json.Marshal(d)
	var m map[string]any
	if err == nil {
		err = json.Unmarshal(raw, &m)
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	m["authorization_response_iss_parameter_supported"] = true
	m["request_parameter_supported"] = false
	m["request_uri_parameter_supported"] = false
	s.encode(w, http.StatusOK, m)
}

// flowSecret returns the browser's flow secret, setting a new flow cookie
// when it has none; it lives as long as an auth request.
func (s *Server) flowSecret(w http.ResponseWriter, r *http.Request) string {
	if v, ok := flowCookieValue(r); ok {
		return v
	}
	v := rand.Text()
	setFlowCookies(w, r, v, int(task.AuthRequestTTL.Seconds()))
	return v
}

// plainFlowCookie is the flow cookie's twin over plain HTTP (development
// only: production serves HTTPS). Browsers that enforce cookie prefixes
// (Chrome, Firefox) drop a __Host- cookie that is not Secure, and a Secure
// one is not sent over plain HTTP by other clients; so plain HTTP also
// gets this one, which is never read over HTTPS, where it could have been
// planted by a sibling site.
const plainFlowCookie = "tm_oauth"

func setFlowCookies(w http.ResponseWriter, r *http.Request, v string, maxAge int) {
	secure := info(r.Context()).secure
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: v, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
	if !secure {
		http.SetCookie(w, &http.Cookie{Name: plainFlowCookie, Value: v, Path: "/", MaxAge: maxAge,
			HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
}

func flowCookieValue(r *http.Request) (string, bool) {
	names := []string{flowCookie}
	if !info(r.Context()).secure {
		names = append(names, plainFlowCookie)
	}
	for _, name := range names {
		if c, err := r.Cookie(name); err == nil && validFlowSecret(c.Value) {
			return c.Value, true
		}
	}
	return "", false
}

func validFlowSecret(v string) bool {
	return len(v) == 26 && strings.Trim(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") == ""
}

// endFlow drops the flow cookie: the flow is over.
func endFlow(w http.ResponseWriter, r *http.Request) { setFlowCookies(w, r, "", -1) }

// csrfToken ties a form to the flow cookie and the auth request: only a
// page that could read the HttpOnly cookie (none) or that we served to
// this browser carries it.
func csrfToken(secret, id string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("oauth form:" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkForm parses a page's form and checks its CSRF token before any
// other field is read; it returns the flow secret and the auth request.
func (s *Server) checkForm(w http.ResponseWriter, r *http.Request) (string, *task.AuthRequest, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/x-www-form-urlencoded") || r.ParseForm() != nil {
		s.errorPage(w, r, http.StatusBadRequest, "This form could not be read.")
		return "", nil, false
	}
	secret, ok := flowCookieValue(r)
	id := r.PostForm.Get("id")
	if !ok || !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(csrfToken(secret, id))) {
		s.securityEvent(r, "csrf_refused", "path", r.URL.Path)
		s.errorPage(w, r, http.StatusForbidden, "This form has expired or did not come from this site.")
		return "", nil, false
	}
	a, ok := s.findAuthRequest(w, r, id)
	return secret, a, ok
}

func (s *Server) findAuthRequest(w http.ResponseWriter, r *http.Request, id string) (*task.AuthRequest, bool) {
	uid, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		s.errorPage(w, r, http.StatusBadRequest, "This sign-in request is invalid or has expired.")
		return nil, false
	}
	a, err := s.deps.OAuth.FindAuthRequest(r.Context(), uid)
	switch {
	case err == nil:
		return a, true
	case errors.Is(err, task.ErrUnavailable) || task.ErrorCode(err) == task.EUNAVAILABLE:
		s.errorPage(w, r, http.StatusServiceUnavailable, "Service temporarily unavailable.")
	case task.ErrorCode(err) == task.EINTERNAL:
		s.log.ErrorContext(r.Context(), "request failed", "request_id", info(r.Context()).id, "err", err.Error())
		s.errorPage(w, r, http.StatusInternalServerError, "Internal server error.")
	default:
		s.errorPage(w, r, http.StatusBadRequest, "This sign-in request is invalid or has expired.")
	}
	return nil, false
}

func (s *Server) clientOf(w http.ResponseWriter, r *http.Request, a *task.AuthRequest) (*task.OAuthClient, bool) {
	c, err := s.deps.OAuth.FindClientByClientID(r.Context(), a.Client)
	if err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "This application is no longer registered here.")
		return nil, false
	}
	return c, true
}

// handleLoginPage handles GET /oauth/login: the sign-in page of a flow
// (what GET /oauth/authorize shows), again.
func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	s.showLogin(w, r, r.URL.Query().Get("id"))
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, id string) {
	a, ok := s.findAuthRequest(w, r, id)
	if !ok {
		return
	}
	c, ok := s.clientOf(w, r, a)
	if !ok {
		return
	}
	secret := s.flowSecret(w, r)
	// The request belongs to the browser that first sees this page: a
	// link to it opened elsewhere (sent to a victim, say) cannot sign in.
	if err := s.deps.OAuth.BindAuthRequest(r.Context(), a.ID, auth.HashSecret(secret)); err != nil {
		if task.ErrorCode(err) == task.ENOTFOUND {
			s.errorPage(w, r, http.StatusBadRequest, "This sign-in request has expired or was started in another browser.")
			return
		}
		s.errorPage(w, r, http.StatusServiceUnavailable, "Service temporarily unavailable.")
		return
	}
	s.page(w, r, http.StatusOK, "login.html", a.RedirectURI, pageData{Title: "Sign in", App: c.Name,
		CSRF: csrfToken(secret, id), ID: id})
}

// handleLogin handles POST /oauth/login: the same password check, limits
// and events as POST /api/token/. Then consent, unless it was given before.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	secret, a, ok := s.checkForm(w, r)
	if !ok {
		return
	}
	c, ok := s.clientOf(w, r, a)
	if !ok {
		return
	}
	id := a.ID.String()
	again := func(status int, msg string) {
		s.page(w, r, status, "login.html", a.RedirectURI, pageData{Title: "Sign in", App: c.Name, Error: msg,
			CSRF: csrfToken(secret, id), ID: id})
	}
	secondStep := func(status int, msg, token string, passkeyOptions []byte) {
		s.page(w, r, status, "login.html", a.RedirectURI, pageData{Title: "Sign in", App: c.Name, Error: msg,
			CSRF: csrfToken(secret, id), ID: id, MFAToken: token, PasskeyOptions: string(passkeyOptions)})
	}
	refuse := func(err error, wrong func(status int)) {
		var ref refusal
		switch task.ErrorCode(err) {
		case task.EAUTHFAILED:
			wrong(http.StatusUnauthorized)
			return
		case task.EINVALID, task.EMALFORMED, task.EBADREQUEST: // a malformed passkey answer
			wrong(http.StatusBadRequest)
			return
		}
		switch {
		case errors.As(err, &ref):
			ref.headers(w)
			again(http.StatusTooManyRequests, "Too many attempts. Wait a minute and try again.")
		case task.ErrorCode(err) == task.EUNAVAILABLE:
			w.Header().Set("Retry-After", "1")
			again(http.StatusServiceUnavailable, "Service temporarily unavailable.")
		default:
			s.log.ErrorContext(r.Context(), "request failed", "request_id", info(r.Context()).id, "err", err.Error())
			again(http.StatusInternalServerError, "Internal server error.")
		}
	}
	var u *task.User
	var amr []string
	if token := r.PostForm.Get("mfa_token"); token != "" {
		// The second step: the password was right, the code or the
		// passkey comes now.
		code, pk := strings.TrimSpace(r.PostForm.Get("code")), r.PostForm.Get("passkey")
		if code == "" && pk == "" || len(code) > 64 || len(pk) > maxPasskeyAnswer || len(token) > 256 {
			secondStep(http.StatusUnauthorized, "Enter the code from your authenticator app, or a recovery code.", token, nil)
			return
		}
		p := &stepUp{RecoveryCode: &code}
		switch {
		case pk != "":
			p = &stepUp{Passkey: json.RawMessage(pk)}
		case len(code) == auth.TOTPDigits && strings.Trim(code, "0123456789") == "":
			p = &stepUp{Code: &code}
		}
		var err error
		if u, amr, err = s.finishMFA(r, auth.HashSecret(token), p); err != nil {
			retry := s.retryPasskeyOptions(r.Context(), u)
			refuse(err, func(status int) {
				if errors.Is(err, task.ErrMFATokenInvalid) {
					again(status, "This sign-in has expired. Enter your username and password again.")
					return
				}
				msg := "That code is not valid."
				if pk != "" {
					msg = "That passkey was not accepted."
				}
				secondStep(status, msg, token, retry)
			})
			return
		}
	} else {
		username, password := strings.TrimSpace(r.PostForm.Get("username")), r.PostForm.Get("password")
		if username == "" || password == "" || len(username) > 150 {
			again(http.StatusUnauthorized, "Wrong username or password.")
			return
		}
		var err error
		if u, err = s.login(r, username, password); err != nil {
			refuse(err, func(status int) { again(status, "Wrong username or password.") })
			return
		}
		f, err := s.secondFactor(r.Context(), u.ID)
		if err == nil && f != nil {
			info(r.Context()).userID = u.ID.String()
			err = s.challenge(r.Context(), u, f)
			if ch := task.ErrorMFA(err); ch != nil {
				secondStep(http.StatusOK, "", ch.Token, ch.PasskeyOptions)
				return
			}
		}
		if err != nil {
			refuse(err, func(status int) { again(status, "Wrong username or password.") })
			return
		}
		amr = []string{task.AMRPassword}
	}
	info(r.Context()).userID = u.ID.String()
	browser := auth.HashSecret(secret)
	if err := s.deps.OAuth.SignInAuthRequest(r.Context(), a.ID, u.ID, s.now(), amr, browser); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "This sign-in request has expired or was started in another browser.")
		return
	}
	s.securityEvent(r, "login_succeeded", "via", "oauth", "client_id", c.ClientID)
	consented, err := s.deps.OAuth.HasConsent(r.Context(), u.ID, c.ID, a.Scopes)
	if err != nil {
		s.errorPage(w, r, http.StatusServiceUnavailable, "Service temporarily unavailable.")
		return
	}
	if consented {
		s.approve(w, r, a, browser)
		return
	}
	words := make([]string, 0, len(a.Scopes))
	for _, sc := range a.Scopes {
		words = append(words, scopeWords[sc])
	}
	s.page(w, r, http.StatusOK, "consent.html", a.RedirectURI, pageData{Title: "Allow access?", App: c.Name,
		Username: u.Username, Scopes: words, CSRF: csrfToken(secret, id), ID: id})
}

// approve records consent and answers the client: the code.
func (s *Server) approve(w http.ResponseWriter, r *http.Request, a *task.AuthRequest, browser []byte) {
	if err := s.deps.OAuth.ApproveAuthRequest(r.Context(), a.ID, browser); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "This sign-in request is invalid or has expired.")
		return
	}
	endFlow(w, r)
	s.answerClient(w, r, a)
}

// handleConsent handles POST /oauth/consent: allow (remembered for this
// client and scope set) or deny (access_denied to the client).
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	secret, a, ok := s.checkForm(w, r)
	if !ok {
		return
	}
	if a.UserID == nil {
		s.errorPage(w, r, http.StatusBadRequest, "Sign in first.")
		return
	}
	info(r.Context()).userID = a.UserID.String()
	switch r.PostForm.Get("decision") {
	case "allow":
		if err := s.deps.OAuth.SaveConsent(r.Context(), *a.UserID, a.ClientID, a.Scopes); err != nil {
			s.errorPage(w, r, http.StatusBadRequest, "This sign-in request is invalid or has expired.")
			return
		}
		s.securityEvent(r, "oauth_consent_granted", "client_id", a.Client, "scopes", strings.Join(a.Scopes, " "))
		s.approve(w, r, a, auth.HashSecret(secret))
	case "deny":
		endFlow(w, r)
		s.redirectError(w, r, a.RedirectURI, a.State, string(oidc.AccessDenied), "The user denied access.")
	default:
		s.errorPage(w, r, http.StatusBadRequest, "Choose Allow or Deny.")
	}
}
