package httpapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-chi/chi/v5"

	"github.com/acme/taskmanager/api"
)

var spec struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
}

// openAPI loads api/openapi.yaml, validated, once per test binary.
func openAPI(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	spec.once.Do(func() {
		// The OAuth pages and their stylesheet: checked as text.
		for _, ct := range []string{"text/html", "text/css"} {
			openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
		}
		doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
		if err == nil {
			err = doc.Validate(context.Background())
		}
		if err == nil {
			spec.doc = doc
			spec.router, err = gorillamux.NewRouter(doc)
		}
		spec.err = err
	})
	if spec.err != nil {
		t.Fatalf("api/openapi.yaml: %v", spec.err)
	}
	return spec.doc, spec.router
}

// TestRoutesMatchSpec fails on a route or method present in the router
// but not in api/openapi.yaml, or the other way round.
func TestRoutesMatchSpec(t *testing.T) {
	doc, _ := openAPI(t)
	e := newEnv(t, nil)
	inRouter := map[string]bool{}
	err := chi.Walk(e.srv.router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if method == http.MethodHead || strings.HasPrefix(route, "/docs") || strings.HasPrefix(route, "/openapi.") {
			return nil // HEAD mirrors GET; the docs describe the API, not themselves
		}
		inRouter[method+" "+strings.TrimSuffix(route, "/")] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	inSpec := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inSpec[method+" "+strings.TrimSuffix(path, "/")] = true
		}
	}
	var missing, extra []string
	for k := range inRouter {
		if !inSpec[k] {
			missing = append(missing, k)
		}
	}
	for k := range inSpec {
		if !inRouter[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes missing from api/openapi.yaml: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("api/openapi.yaml describes routes the server lacks: %v", extra)
	}
}

// checkAgainstSpec validates one response against api/openapi.yaml: its
// status must be documented for the operation and its headers and body
// must match. Requests the spec cannot route (unknown paths, methods the
// route lacks) are the drift test's business.
func checkAgainstSpec(t testing.TB, r *http.Request, w *httptest.ResponseRecorder) {
	t.Helper()
	_, router := openAPI(t)
	probe := r.Clone(context.Background())
	if p := probe.URL.Path; strings.HasPrefix(p, "/api/") && !strings.HasSuffix(p, "/") {
		probe.URL.Path = p + "/" // the spec spells paths with their slash
	}
	probe.URL.Host, probe.URL.Scheme, probe.Host = "", "", ""
	route, params, err := router.FindRoute(probe)
	if err != nil {
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: probe, PathParams: params, Route: route},
		Status:                 w.Code,
		Header:                 w.Header(),
		Body:                   io.NopCloser(bytes.NewReader(w.Body.Bytes())),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s -> %d does not match api/openapi.yaml: %v\nbody: %.300s", r.Method, r.URL.Path, w.Code, err, w.Body.String())
	}
}
