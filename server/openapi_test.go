package server_test

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"mcptower/server"
)

// TestOpenAPIDocumentValid validates the document against the OpenAPI 3.1
// schema with a Go OpenAPI library.
func TestOpenAPIDocumentValid(t *testing.T) {
	spec, err := server.OpenAPI("1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); !strings.HasPrefix(v, "3.1") {
		t.Errorf("OpenAPI version %q, want 3.1", v)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("build model: %v", err)
	}
	if model.Model.Info.Version != "1.2.3" {
		t.Errorf("info.version = %q", model.Model.Info.Version)
	}
	v, errList := validator.NewValidator(doc)
	if len(errList) > 0 {
		t.Fatal(errList)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Error(e.Error())
		}
	}
}

// TestOpenAPICoversRoutes: every operation of the document is served by the
// mux (a request built from it reaches a route, not a fallback), and every
// route the mux serves is reached by some operation.
func TestOpenAPICoversRoutes(t *testing.T) {
	env := newRESTApp(t, "", nil) // an App: with metrics, so /metrics too
	mux, patterns := server.ServedMux(env.app.Server)
	spec, err := server.OpenAPI("test")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		t.Fatal(err)
	}
	params := strings.NewReplacer("{session_id}", "s1", "{agent}", "echo@1.0.0")
	reached := map[string]bool{}
	operations := 0
	for path, item := range doc.Paths {
		for method := range item {
			operations++
			req := httptest.NewRequest(strings.ToUpper(method), params.Replace(path), nil)
			_, pattern := mux.Handler(req)
			if pattern == "" || slices.Contains(server.RESTFallbacks, pattern) {
				t.Errorf("the document has %s %s, which the mux does not serve (pattern %q)", strings.ToUpper(method), path, pattern)
				continue
			}
			reached[pattern] = true
		}
	}
	for _, p := range patterns {
		if !slices.Contains(server.RESTFallbacks, p) && !reached[p] {
			t.Errorf("the mux serves %q, which the document does not describe", p)
		}
	}
	if operations < 15 {
		t.Errorf("only %d operations in the document", operations)
	}
}

// TestOpenAPIServed: GET /v1/openapi.json serves the document.
func TestOpenAPIServed(t *testing.T) {
	c := newRESTApp(t, "", nil).client
	r := c.do("GET", "/v1/openapi.json", nil)
	want, err := server.OpenAPI("test")
	if err != nil {
		t.Fatal(err)
	}
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" || string(r.body) != string(want) {
		t.Errorf("GET /v1/openapi.json: %d %s, body differs from OpenAPI(): %v", r.status, r.header.Get("Content-Type"), string(r.body) != string(want))
	}
}
