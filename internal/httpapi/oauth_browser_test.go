package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
)

// TestOAuthSignInInBrowser signs in and consents on the real pages in
// headless Chromium, which enforces their CSP (form-action included, on
// the redirect that follows the form post) and the __Host- cookie rules,
// and sees the client's callback with code, state and iss; the code then
// buys a token that lists the user's tasks.
func TestOAuthSignInInBrowser(t *testing.T) {
	for _, tls := range []bool{false, true} {
		name := "http"
		if tls {
			name = "https"
		}
		t.Run(name, func(t *testing.T) { browserFlow(t, tls) })
	}
}

func browserFlow(t *testing.T, tls bool) {
	e := newEnv(t, map[string]string{"ALLOWED_HOSTS": "127.0.0.1,.example.com", "RATE_LIMIT_ANON": "10000/minute"})
	var ts *httptest.Server
	if tls {
		ts = httptest.NewTLSServer(e.srv)
	} else {
		ts = httptest.NewServer(e.srv)
	}
	defer ts.Close()
	o := &oauthEnv{testEnv: e, base: ts.URL, admin: e.newAdmin()}

	app, got := callbackApp(t)
	c := o.register(t, map[string]any{"redirect_uris": []string{app.URL + "/callback"}})
	u := e.newUser()
	e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": "Seen by the app"}}).status(http.StatusCreated)
	conf := &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: app.URL + "/callback",
		Scopes: []string{"tasks:read", "openid"}, Endpoint: oauth2.Endpoint{AuthURL: ts.URL + "/oauth/authorize", TokenURL: ts.URL + "/oauth/token"}}
	verifier := oauth2.GenerateVerifier()

	ctx := headless(t, 900, 900)
	problems := pageProblems(t, ctx)
	steps := []browserStep{
		{"open authorize", chromedp.Navigate(conf.AuthCodeURL("browser-state", oauth2.S256ChallengeOption(verifier)))},
		{"sign-in page", chromedp.WaitVisible(`#username`)},
		{"username", chromedp.SendKeys(`#username`, u.username)},
		{"password", chromedp.SendKeys(`#password`, u.password)},
		{"sign in", chromedp.Click(`button[type=submit]`)},
		{"consent page", chromedp.WaitVisible(`button[value=allow]`)},
	}
	err := runSteps(ctx, steps)
	var consent string
	if err == nil {
		consent, err = chromedp.Run(ctx, chromedp.Text(`main`))
		if shot, serr := chromedp.Run(ctx, chromedp.CaptureScreenshot()); serr == nil {
			saveArtifact(t, "oauth-consent-"+map[bool]string{false: "http", true: "https"}[tls]+".png", shot)
		}
	}
	if err == nil {
		err = chromedp.Do(ctx, chromedp.Click(`button[value=allow]`))
	}
	if err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("driving the sign-in pages: %v; the page reads: %.500s (console: %v)", err, text, problems())
	}
	if !strings.Contains(consent, "Task Importer") || !strings.Contains(consent, "See your tasks") ||
		!strings.Contains(consent, "Know who you are") {
		t.Fatalf("the consent page does not name the application and its scopes in plain words: %q", consent)
	}
	var q url.Values
	select {
	case q = <-got:
	case <-time.After(15 * time.Second):
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.location.href + " " + document.body.innerText`))
		t.Fatalf("the browser never reached the client's callback; it shows %.300s (console: %v)", text, problems())
	}
	if q.Get("code") == "" || q.Get("state") != "browser-state" || q.Get("iss") != ts.URL {
		t.Fatalf("callback query = %v, want code, state and iss %s", q, ts.URL)
	}
	exchangeCtx := context.WithValue(t.Context(), oauth2.HTTPClient, ts.Client())
	tok, err := conf.Exchange(exchangeCtx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchanging the browser's code: %v", err)
	}
	e.do(req{method: "GET", path: "/api/tasks/", auth: "Bearer " + tok.AccessToken}).status(http.StatusOK)
	if p := problems(); len(p) > 0 {
		t.Fatalf("the pages logged errors (a CSP violation?): %v", p)
	}
}

// callbackApp is an OAuth client's loopback callback: it records the
// first query it is sent.
func callbackApp(t *testing.T) (*httptest.Server, <-chan url.Values) {
	got := make(chan url.Values, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/callback" {
			select {
			case got <- r.URL.Query():
			default:
			}
		}
		fmt.Fprint(w, "<!doctype html><title>Importer</title><p>signed in")
	}))
	t.Cleanup(app.Close)
	return app, got
}

// pageProblems collects what the pages of ctx report as errors: uncaught
// exceptions, and log errors (CSP violations among them) but those that
// contain one of expected.
func pageProblems(t *testing.T, ctx context.Context, expected ...string) func() []string {
	var mu sync.Mutex
	var problems []string
	if err := chromedp.Listen(ctx, func(ev any) {
		var text string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			text = ev.ExceptionDetails.Text
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError && !strings.Contains(ev.Entry.Text, "favicon") {
				text = ev.Entry.Text
			}
		}
		if text != "" && !slices.ContainsFunc(expected, func(e string) bool { return strings.Contains(text, e) }) {
			mu.Lock()
			problems = append(problems, text)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("listening to Chromium: %v", err)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(problems)
	}
}
