package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"
	"github.com/swaggest/swgui"
	"github.com/swaggest/swgui/v5emb"
	"sigs.k8s.io/yaml"

	"github.com/acme/taskmanager/api"
)

// docs serves the OpenAPI document and Swagger UI, from the binary. They are
// built on the first request for them: building reads every embedded UI
// file (the file server hashes them all), which would keep megabytes of the
// binary resident in a server nobody browses.
type docs struct {
	load func() *docsContent
}

type docsContent struct {
	json []byte
	ui   http.Handler
	csp  string
}

func newDocs() *docs { return &docs{load: sync.OnceValue(buildDocs)} }

func buildDocs() *docsContent {
	spec, err := yaml.YAMLToJSON(api.OpenAPI)
	if err != nil {
		panic("httpapi: api/openapi.yaml is not YAML: " + err.Error()) // caught by every test run
	}
	d := &docsContent{json: spec, ui: v5emb.NewHandlerWithConfig(swgui.Config{
		Title: "taskmanager API", SwaggerJSON: "/openapi.json", BasePath: "/docs/",
		SettingsUI: map[string]string{"persistAuthorization": "false", "tryItOutEnabled": "true"},
	})}
	d.csp = d.policy()
	return d
}

var inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)
var inlineStyle = regexp.MustCompile(`(?s)<style>(.*?)</style>`)

// policy is the page's own Content-Security-Policy: its scripts and styles
// come from this server, plus the inline blocks of the page, allowed by
// hash; it may call this API and nothing else.
func (d *docsContent) policy() string {
	w := httptest.NewRecorder()
	d.ui.ServeHTTP(w, httptest.NewRequest("GET", "/docs/", nil))
	page := w.Body.String()
	hashes := func(re *regexp.Regexp) string {
		var out []string
		for _, m := range re.FindAllStringSubmatch(page, -1) {
			sum := sha256.Sum256([]byte(m[1]))
			out = append(out, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
		}
		return strings.Join(out, " ")
	}
	return "default-src 'none'; script-src 'self' " + hashes(inlineScript) +
		"; style-src 'self' " + hashes(inlineStyle) +
		"; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// routes mounts the document and the UI.
func (d *docs) routes(r chi.Router) {
	r.Get("/openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(api.OpenAPI)
	})
	r.Get("/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Security-Policy", jsonCSP)
		_, _ = w.Write(d.load().json)
	})
	page := func(w http.ResponseWriter, r *http.Request) {
		c := d.load()
		w.Header().Set("Content-Security-Policy", c.csp)
		c.ui.ServeHTTP(w, r)
	}
	r.Get("/docs", page)
	r.Get("/docs/*", page)
}
