package httpapi

import (
	"net/http"
	"testing"
)

func TestHarnessRegistersAndLists(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": "Buy milk"}}).status(http.StatusCreated)
	page := decodeAs[pageJSON[taskJSON]](e.do(req{method: "GET", path: "/api/tasks/", auth: u.bearer()}).status(http.StatusOK))
	if len(page.Results) != 1 || page.Results[0].Title != "Buy milk" {
		t.Fatalf("results = %+v, want the one task", page.Results)
	}
}
