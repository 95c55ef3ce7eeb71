package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromium finds the browser: CHROMIUM, else Debian's /usr/bin/chromium
// (make test installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("no Chromium: run `make test` (it installs Debian's chromium) or set CHROMIUM")
	return ""
}

// headless starts a headless Chromium with a window of w × h and a
// profile of its own, for 90 s at most; it is closed when the test ends.
func headless(t *testing.T, w, h int) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("ignore-certificate-errors", true), // httptest's TLS certificate
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(w, h))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	t.Cleanup(func() { cancel(); cancelBrowser(); cancelAlloc() })
	return ctx
}

// browserStep is one named action of a browser test.
type browserStep struct {
	name string
	act  chromedp.Action[chromedp.Void]
}

// runSteps runs steps in order, each within 15 s, and names the one that
// failed.
func runSteps(ctx context.Context, steps []browserStep) error {
	for _, st := range steps {
		stepCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := chromedp.Do(stepCtx, st.act)
		cancel()
		if err != nil {
			return fmt.Errorf("step %q: %w", st.name, err)
		}
	}
	return nil
}

// TestDocsInBrowser opens /docs in headless Chromium, authorizes with a
// token, runs "list tasks" and sees a 200, under the page's own strict
// Content-Security-Policy. The screenshot goes to .artifacts/.
func TestDocsInBrowser(t *testing.T) {
	e := newEnv(t, map[string]string{"ALLOWED_HOSTS": "127.0.0.1,.example.com"}) // the browser names httptest's 127.0.0.1
	u := e.newUser()
	e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": "Seen from the docs"}}).status(http.StatusCreated)
	ts := httptest.NewServer(e.srv)
	defer ts.Close()

	ctx := headless(t, 1280, 1400)

	var mu sync.Mutex
	var consoleErrors []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			mu.Lock()
			consoleErrors = append(consoleErrors, e.ExceptionDetails.Text)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}

	op := `#operations-Tasks-listTasks`
	steps := []browserStep{
		// The deep link opens "list tasks" expanded.
		{"open /docs", chromedp.Navigate(ts.URL + "/docs/#/Tasks/listTasks")},
		{"page rendered", chromedp.WaitVisible(`.swagger-ui .info .title`)},
		{"open Authorize", jsClick(`.auth-wrapper button.authorize`)},
		{"dialog shown", chromedp.WaitVisible(`.dialog-ux .modal-ux`)},
		{"enter token", chromedp.SendKeys(`.dialog-ux input[aria-label="auth-bearer-value"]`, u.access)},
		{"authorize", jsClick(`.dialog-ux .auth-container:has(input[aria-label="auth-bearer-value"]) button.authorize`)},
		{"authorized", chromedp.WaitVisible(`.dialog-ux button[aria-label="Remove authorization"]`)},
		{"close dialog", jsClick(`.dialog-ux button.btn-done`)},
		{"dialog gone", chromedp.WaitNotPresent(`.dialog-ux`)},
		{"operation open", chromedp.WaitVisible(op + ` button.execute`)},
		// The page opens operations ready to try (tryItOutEnabled).
		{"execute", jsClick(op + ` button.execute`)},
		{"response shown", chromedp.WaitVisible(op + ` .live-responses-table tbody .response-col_status`)},
		{"scroll to it", chromedp.ScrollIntoView(op + ` .live-responses-table`)},
	}
	err := runSteps(ctx, steps)
	var status, body string
	if err == nil {
		status, err = chromedp.Run(ctx, chromedp.Text(op+` .live-responses-table tbody .response-col_status`))
	}
	if err == nil {
		body, err = chromedp.Run(ctx, chromedp.Text(op+` .live-responses-table tbody .response-col_description`))
	}
	if shot, serr := chromedp.Run(ctx, chromedp.CaptureScreenshot()); serr == nil {
		saveArtifact(t, "docs-list-tasks.png", shot)
	}
	if err != nil {
		text, herr := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector(".dialog-ux") || document.querySelector("`+op+`")).innerText`))
		t.Logf("the page reads (%v): %.2000s", herr, text)
		t.Fatalf("driving /docs: %v (console: %v)", err, consoleErrors)
	}
	if !strings.HasPrefix(strings.TrimSpace(status), "200") || !strings.Contains(body, "Seen from the docs") {
		t.Fatalf("list tasks from /docs: status %q, body %.200q", status, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(consoleErrors) > 0 {
		t.Fatalf("the docs page threw errors: %v", consoleErrors)
	}
}

// jsClick clicks through the DOM rather than at coordinates, which a
// layout shift in a busy page can make miss.
func jsClick(sel string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		ok, err := chromedp.Evaluate[bool](`(() => { const e = document.querySelector(`+strconv.Quote(sel)+`); if (!e) return false; e.click(); return true })()`)(ctx, t)
		if err == nil && !ok {
			err = fmt.Errorf("nothing matches %s", sel)
		}
		return chromedp.Void{}, err
	}
}

// saveArtifact writes a file under the repository's .artifacts/.
func saveArtifact(t *testing.T, name string, data []byte) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", ".artifacts"))
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}
	if err != nil {
		t.Errorf("saving %s: %v", name, err)
		return
	}
	fmt.Fprintf(os.Stderr, "screenshot: %s\n", filepath.Join(dir, name))
}
