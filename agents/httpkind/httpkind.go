// Package httpkind registers the agent kind "http": an HTTP endpoint called
// with a request built from the agent's input, its response mapped to the
// agent's output.
//
//	agents:
//	  - name: weather
//	    kind: http
//	    description: Current weather for a city.
//	    method: GET
//	    url: "https://api.example.com/v1/weather?city={{.city | urlquery}}"
//	    headers: {X-Api-Key: "${WEATHER_API_KEY}"}
//	    timeout: 10s
//	    response_pointer: /current
//	    input_schema:
//	      type: object
//	      properties: {city: {type: string}}
//	      required: [city]
//
// The URL and the body are text/templates over the input (a JSON object
// decoded with numbers kept as written); besides the built-in functions
// (urlquery, printf, ...) they may use json (a value as JSON) and
// pathescape. Without a body template, methods that carry a body send the
// input as JSON. The common timeout field bounds the whole exchange.
//
// A 2xx response is the result: its JSON (or the part at response_pointer)
// is the structured output when an output schema is set, and otherwise the
// text content (a JSON string is unquoted). Any other status is a tool error
// the model can read, with the status and the start of the body; 429 is
// errs.RateLimited and 502, 503 and 504 are errs.Unavailable, so callers can
// tell a transient failure. The query string of the URL never appears in
// messages, since it may hold secrets.
package httpkind

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/template"
	"unicode/utf8"

	"mcptower/agents"
	"mcptower/internal/errs"
	"mcptower/internal/observe"
	"mcptower/schemas"
)

// Kind is the name the kind is registered under.
const Kind = "http"

// DefaultMaxResponseBytes limits a response body when
// Options.MaxResponseBytes is zero.
const DefaultMaxResponseBytes int64 = 10 << 20

func init() {
	agents.RegisterKind(Kind, func(_ context.Context, def *agents.Definition) ([]agents.Agent, error) {
		a, err := New(def)
		if err != nil {
			return nil, err
		}
		return []agents.Agent{a}, nil
	})
}

// Options are the kind-specific fields of an "http" agent definition.
type Options struct {
	// Method is the HTTP method; empty means POST.
	Method string `json:"method,omitempty"`
	// URL is a text/template over the input that yields an http or https
	// URL. Required.
	URL string `json:"url"`
	// Headers are sent with every request; write secrets as ${VAR} in the
	// config file.
	Headers map[string]string `json:"headers,omitempty"`
	// BearerTokenEnv names an environment variable whose value is sent as
	// "Authorization: Bearer <value>", read at every call.
	BearerTokenEnv string `json:"bearer_token_env,omitempty"`
	// Body is a text/template over the input; empty means the input as
	// JSON for POST, PUT, PATCH and DELETE, and no body for other methods.
	Body string `json:"body,omitempty"`
	// ContentType of the body; empty means application/json.
	ContentType string `json:"content_type,omitempty"`
	// ResponsePointer selects part of a JSON response (RFC 6901, like
	// "/data/items"); empty means the whole body.
	ResponsePointer string `json:"response_pointer,omitempty"`
	// InputSchema is the JSON Schema of the input (an object); empty means
	// any object.
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
	// OutputSchema is the JSON Schema of the structured output (an object);
	// empty means the response is returned as text.
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
	// MaxResponseBytes limits the response body; zero means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64 `json:"max_response_bytes,omitempty"`
	// ReadOnly, Idempotent, Destructive and OpenWorld are the hints given to
	// hosts. Unset, ReadOnly is true for GET and HEAD, Idempotent for GET,
	// HEAD, PUT and DELETE, and Destructive and OpenWorld take the MCP
	// default (true).
	ReadOnly    *bool `json:"read_only,omitempty"`
	Idempotent  *bool `json:"idempotent,omitempty"`
	Destructive *bool `json:"destructive,omitempty"`
	OpenWorld   *bool `json:"open_world,omitempty"`
}

// Agent is an HTTP endpoint as an agent.
type Agent struct {
	spec        agents.Spec
	opts        Options
	url, body   *template.Template
	sendInput   bool // no body template, but the method carries a body
	maxBytes    int64
	transport   *http.Transport
	client      *http.Client
	contentType string
}

var (
	_ agents.Agent = (*Agent)(nil)
	_ io.Closer    = (*Agent)(nil)
)

var funcs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"pathescape": url.PathEscape,
}

// New builds the agent of def. It makes no request.
func New(def *agents.Definition) (*Agent, error) {
	var o Options
	if err := def.DecodeOptions(&o); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return errs.E(errs.Invalid, "agent %q (kind http): "+format, append([]any{def.Name}, args...)...)
	}
	if o.URL == "" {
		return nil, bad("url is required")
	}
	o.Method = strings.ToUpper(cmpOr(o.Method, http.MethodPost))
	a := &Agent{opts: o, maxBytes: cmpOr(o.MaxResponseBytes, DefaultMaxResponseBytes), contentType: cmpOr(o.ContentType, "application/json")}
	var err error
	if a.url, err = template.New("url").Funcs(funcs).Parse(o.URL); err != nil {
		return nil, bad("url template: %v", err)
	}
	if o.Body != "" {
		if a.body, err = template.New("body").Funcs(funcs).Parse(o.Body); err != nil {
			return nil, bad("body template: %v", err)
		}
	} else {
		switch o.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			a.sendInput = true
		}
	}
	if o.ResponsePointer != "" && !strings.HasPrefix(o.ResponsePointer, "/") {
		return nil, bad("response_pointer %q: a JSON pointer starts with '/'", o.ResponsePointer)
	}
	a.spec = agents.Spec{Version: "1.0.0", Kind: Kind, Description: o.Method + " " + redactURL(o.URL)}
	def.ApplyTo(&a.spec)
	if len(o.InputSchema) > 0 {
		if a.spec.Input, err = schemas.Parse(o.InputSchema); err != nil {
			return nil, bad("input_schema: %v", err)
		}
		if !a.spec.Input.IsObject() {
			return nil, bad("input_schema must describe an object")
		}
	}
	if len(o.OutputSchema) > 0 {
		if a.spec.Output, err = schemas.Parse(o.OutputSchema); err != nil {
			return nil, bad("output_schema: %v", err)
		}
		if !a.spec.Output.IsObject() {
			return nil, bad("output_schema must describe an object (MCP structured output is an object)")
		}
	}
	safe := o.Method == http.MethodGet || o.Method == http.MethodHead
	a.spec.Hints = agents.Hints{
		ReadOnly:    deref(o.ReadOnly, safe),
		Idempotent:  deref(o.Idempotent, safe || o.Method == http.MethodPut || o.Method == http.MethodDelete),
		Destructive: o.Destructive,
		OpenWorld:   o.OpenWorld,
	}
	a.transport = http.DefaultTransport.(*http.Transport).Clone()
	a.client = &http.Client{Transport: observe.Transport(a.transport)} // traced, carries traceparent
	return a, nil
}

// Spec returns the agent's spec.
func (a *Agent) Spec() *agents.Spec { return &a.spec }

// Close releases idle connections.
func (a *Agent) Close() error {
	a.transport.CloseIdleConnections()
	return nil
}

// Invoke makes the request and maps the response.
func (a *Agent) Invoke(ctx context.Context, call *agents.Call) (*agents.Result, error) {
	dec := json.NewDecoder(bytes.NewReader(call.Args))
	dec.UseNumber()
	var input map[string]any
	if err := dec.Decode(&input); err != nil {
		return nil, errs.E(errs.Invalid, "input is not a JSON object: %v", err)
	}
	rawURL, err := render(a.url, input)
	if err != nil {
		return nil, errs.E(errs.Invalid, "url template: %v", err)
	}
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errs.E(errs.Invalid, "url template produced %q, not an http(s) URL", redactURL(rawURL))
	}
	var body io.Reader
	switch {
	case a.body != nil:
		s, err := render(a.body, input)
		if err != nil {
			return nil, errs.E(errs.Invalid, "body template: %v", err)
		}
		body = strings.NewReader(s)
	case a.sendInput:
		body = bytes.NewReader(call.Args)
	}
	req, err := http.NewRequestWithContext(ctx, a.opts.Method, u.String(), body)
	if err != nil {
		return nil, errs.E(errs.Invalid, "build request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", a.contentType)
	}
	req.Header.Set("Accept", "application/json, */*;q=0.5")
	for k, v := range a.opts.Headers {
		req.Header.Set(k, v)
	}
	if env := a.opts.BearerTokenEnv; env != "" {
		tok := os.Getenv(env)
		if tok == "" {
			return nil, errs.E(errs.Unavailable, "bearer_token_env %s is not set", env)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	where := a.opts.Method + " " + redactURL(u.String())
	resp, err := a.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errs.E(errs.Unavailable, "%s: %v", where, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, a.maxBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errs.E(errs.Unavailable, "%s: read response: %v", where, unwrapURLError(err))
	}
	if int64(len(data)) > a.maxBytes {
		return nil, errs.E(errs.Unavailable, "%s: response is larger than %d bytes (max_response_bytes)", where, a.maxBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return statusResult(where, resp, data)
	}
	return a.result(where, data)
}

// statusResult turns a non-2xx response into a tool error.
func statusResult(where string, resp *http.Response, data []byte) (*agents.Result, error) {
	msg := fmt.Sprintf("%s: HTTP %s", where, resp.Status)
	if s := snippet(data, 512); s != "" {
		msg += ": " + s
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			msg += " (Retry-After: " + ra + ")"
		}
		return nil, errs.E(errs.RateLimited, "%s", msg)
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return nil, errs.E(errs.Unavailable, "%s", msg)
	}
	return &agents.Result{IsError: true, Content: []agents.Content{agents.Text(msg)}}, nil
}

func (a *Agent) result(where string, data []byte) (*agents.Result, error) {
	data = bytes.TrimSpace(data)
	value := json.RawMessage(data)
	isJSON := len(data) > 0 && json.Valid(data)
	if a.opts.ResponsePointer != "" {
		if !isJSON {
			return nil, errs.E(errs.Internal, "%s: response is not JSON, so response_pointer %s cannot apply: %s", where, a.opts.ResponsePointer, snippet(data, 200))
		}
		v, err := pointer(data, a.opts.ResponsePointer)
		if err != nil {
			return nil, errs.E(errs.Internal, "%s: response_pointer %s: %v", where, a.opts.ResponsePointer, err)
		}
		value = v
	}
	if a.spec.Output != nil {
		if !isJSON {
			return nil, errs.E(errs.Internal, "%s: response is not JSON, but the agent declares an output schema: %s", where, snippet(data, 200))
		}
		return &agents.Result{Output: value}, nil
	}
	text := string(value)
	if isJSON {
		var s string
		if json.Unmarshal(value, &s) == nil {
			text = s
		}
	}
	return &agents.Result{Content: []agents.Content{agents.Text(text)}}, nil
}

func render(t *template.Template, input map[string]any) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, input); err != nil {
		return "", err
	}
	return b.String(), nil
}

// pointer resolves an RFC 6901 JSON pointer in doc.
func pointer(doc []byte, ptr string) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	for _, tok := range strings.Split(ptr, "/")[1:] {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := v.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("the response has no member %q", tok)
			}
			v = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("the response has no element %q (array of %d)", tok, len(c))
			}
			v = c[i]
		default:
			return nil, fmt.Errorf("cannot take %q of a JSON scalar", tok)
		}
	}
	return json.Marshal(v)
}

// snippet returns the start of a body, on one line, for messages.
func snippet(data []byte, n int) string {
	s := strings.Join(strings.Fields(string(data)), " ")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// redactURL drops the query and any user info, which may hold secrets.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			return raw[:i]
		}
		return raw
	}
	u.User, u.RawQuery, u.Fragment, u.ForceQuery = nil, "", "", false
	return u.String()
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func cmpOr[T comparable](a, b T) T {
	var zero T
	if a != zero {
		return a
	}
	return b
}

func deref(p *bool, def bool) bool {
	if p != nil {
		return *p
	}
	return def
}
