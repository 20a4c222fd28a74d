package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"mcptower/agents"
	"mcptower/contextstore"
	"mcptower/internal/errs"
	"mcptower/schemas"
	"mcptower/tools"
)

// The REST API is a JSON adapter over the same Engine the MCP tools use:
// every invocation goes through Engine.Invoke, every error is an RFC 9457
// problem carrying the domain error code.

// Registrar adds and removes agents at run time, for POST and DELETE
// /v1/agents. *App implements it and persists what it registers; a Server
// without one answers those two routes with 403.
type Registrar interface {
	// Register builds def through its kind (validated as a config agent
	// is), starts and registers what it yields. A name@version already
	// taken is errs.Conflict.
	Register(ctx context.Context, def *agents.Definition) ([]agents.Agent, error)
	// Unregister removes the runtime registration name@version and returns
	// the name@version of every agent removed. An unknown agent is
	// errs.NotFound; one that was not registered at run time (config,
	// built-in) is errs.Conflict.
	Unregister(ctx context.Context, name, version string) ([]string, error)
	// Registered reports whether name@version was registered at run time.
	Registered(ref string) bool
}

// InvokeRequest is the body of POST /v1/invoke.
type InvokeRequest struct {
	SessionID string          `json:"session_id,omitempty" jsonschema_description:"Context session to record the call in; empty starts a new one, returned in the response."`
	Agent     string          `json:"agent" jsonschema_description:"Agent name, or name@version."`
	Version   string          `json:"version,omitempty" jsonschema_description:"Agent version; empty means the newest. Not allowed when agent already says name@version."`
	Input     json.RawMessage `json:"input,omitempty" jsonschema:"type=object" jsonschema_description:"The agent's arguments, a JSON object matching its input schema; absent means {}."`
}

// InvokeResponse is the answer of POST /v1/invoke, and the result carried
// by a 503 problem when the agent ran but the call could not be recorded.
type InvokeResponse struct {
	SessionID  string           `json:"session_id" jsonschema_description:"The context session the call was recorded in."`
	Agent      string           `json:"agent" jsonschema_description:"The agent that ran, name@version."`
	Output     json.RawMessage  `json:"output,omitempty" jsonschema_description:"Structured output, matching the agent's output schema."`
	Content    []agents.Content `json:"content" jsonschema_description:"Content blocks (text, image, audio, resource, resource_link)."`
	Usage      *agents.Usage    `json:"usage,omitempty"`
	IsError    bool             `json:"is_error,omitempty" jsonschema_description:"The agent answered, but reports the call as failed; content says why."`
	Seq        int64            `json:"seq,omitempty" jsonschema_description:"Sequence number of the context entry recording the call."`
	DurationMS float64          `json:"duration_ms" jsonschema_description:"How long the call took, in milliseconds."`
}

// CompatInvokeRequest is the body of POST /invoke, the seed's API: the
// agent is called with the input {"prompt": prompt}.
type CompatInvokeRequest struct {
	SessionID string `json:"session_id,omitempty" jsonschema_description:"Context session; empty starts a new one."`
	AgentName string `json:"agent_name" jsonschema_description:"Agent name, or name@version."`
	Prompt    string `json:"prompt" jsonschema_description:"Sent to the agent as its input {\"prompt\": ...}."`
}

// CompatInvokeResponse is the answer of POST /invoke. Response is the
// output's text: the value of the output's only field when the output is a
// JSON object with a single string field; else the text content blocks,
// joined by newlines; else the output as JSON text.
type CompatInvokeResponse struct {
	Response  string `json:"response" jsonschema_description:"The agent's answer as text."`
	SessionID string `json:"session_id" jsonschema_description:"The context session the call was recorded in."`
	IsError   bool   `json:"is_error,omitempty" jsonschema_description:"The agent reports the call as failed; response says why."`
}

// HistoryResponse is the answer of GET /v1/history/{session_id}: a page of
// entries, oldest first.
type HistoryResponse struct {
	SessionID  string               `json:"session_id"`
	Entries    []contextstore.Entry `json:"entries"`
	NextBefore int64                `json:"next_before,omitempty" jsonschema_description:"Pass as before= to get the previous (older) page; absent on the oldest page."`
}

// SessionsResponse is the answer of GET /v1/sessions, most recently updated
// first.
type SessionsResponse struct {
	Sessions          []contextstore.SessionInfo `json:"sessions"`
	NextUpdatedBefore *time.Time                 `json:"next_updated_before,omitempty" jsonschema_description:"Pass as updated_before= to get the next page; absent on the last page."`
}

// AgentInfo is an agent as the REST API shows it.
type AgentInfo struct {
	tools.AgentView
	Runtime bool `json:"runtime,omitempty" jsonschema_description:"Registered through POST /v1/agents, so DELETE can remove it."`
}

// AgentsResponse is the answer of GET /v1/agents and POST /v1/agents.
type AgentsResponse struct {
	Agents []AgentInfo `json:"agents"`
}

// AgentVersionsResponse is the answer of GET /v1/agents/{name}: every
// version, newest first.
type AgentVersionsResponse struct {
	Name     string      `json:"name"`
	Versions []AgentInfo `json:"versions"`
}

// UnregisterResponse is the answer of DELETE /v1/agents/{name}@{version}.
type UnregisterResponse struct {
	Removed []string `json:"removed" jsonschema_description:"The agents removed, name@version."`
}

// Problem is an RFC 9457 problem detail, the body of every REST error
// (Content-Type application/problem+json). Type is always "about:blank":
// the status says what kind of problem it is, and Code, the domain error
// code, is the stable value for programs to switch on.
type Problem struct {
	Type   string `json:"type" jsonschema_description:"Always about:blank; see code."`
	Title  string `json:"title" jsonschema_description:"The HTTP status text."`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty" jsonschema_description:"What went wrong, for people."`
	Code   string `json:"code" jsonschema:"enum=internal,enum=not_found,enum=invalid,enum=unauthorized,enum=forbidden,enum=rate_limited,enum=unavailable,enum=timeout,enum=conflict" jsonschema_description:"The domain error code."`
	// Field is the JSON pointer of the input value that broke the agent's
	// input schema (422).
	Field     string          `json:"field,omitempty" jsonschema_description:"JSON pointer of the input value that broke the agent's input schema."`
	SessionID string          `json:"session_id,omitempty" jsonschema_description:"The call's context session, when the agent was found."`
	Agent     string          `json:"agent,omitempty" jsonschema_description:"The agent, name@version, when it was found."`
	Result    *InvokeResponse `json:"result,omitempty" jsonschema_description:"What the agent returned, when it ran but the call could not be recorded."`
}

// Media types of REST bodies.
const (
	contentJSON    = "application/json"
	contentProblem = "application/problem+json"
)

// restAPI serves the REST routes of a Server.
type restAPI struct {
	s   *Server
	reg Registrar
	cop *http.CrossOriginProtection
	doc func() ([]byte, error)
	// methods finds the methods a path is served with, for 405 answers.
	methods *http.ServeMux
}

// restRoutes returns the REST routes by mux pattern. reg backs runtime
// registration; nil answers POST and DELETE /v1/agents with 403.
func (s *Server) restRoutes(reg Registrar) map[string]http.Handler {
	h := &restAPI{s: s, reg: reg, cop: http.NewCrossOriginProtection(), methods: http.NewServeMux()}
	for _, o := range s.opts.TrustedOrigins {
		_ = h.cop.AddTrustedOrigin(o) // MCPHandler logs invalid ones
	}
	h.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, newProblem(http.StatusForbidden, errs.Forbidden,
			fmt.Sprintf("cross-origin request from %q is not allowed; add the origin to server.trusted_origins", r.Header.Get("Origin"))))
	}))
	version := s.opts.Version
	h.doc = sync.OnceValues(func() ([]byte, error) { return OpenAPI(version) })

	routes := map[string]http.Handler{
		"POST /v1/invoke":              http.HandlerFunc(h.invoke),
		"POST /invoke":                 http.HandlerFunc(h.invokeCompat),
		"GET /v1/history/{session_id}": http.HandlerFunc(h.history),
		"GET /v1/sessions":             http.HandlerFunc(h.sessions),
		"GET /v1/agents":               http.HandlerFunc(h.listAgents),
		"POST /v1/agents":              http.HandlerFunc(h.register),
		"GET /v1/agents/{agent}":       http.HandlerFunc(h.getAgent),
		"DELETE /v1/agents/{agent}":    http.HandlerFunc(h.unregister),
		"GET /v1/openapi.json":         http.HandlerFunc(h.openAPI),
	}
	for pattern := range routes {
		h.methods.Handle(pattern, http.NotFoundHandler())
	}
	// Everything else under the REST prefixes is a problem too, not the
	// mux's plain-text 404 or 405.
	for _, p := range restFallbacks {
		routes[p] = http.HandlerFunc(h.fallback)
	}
	for pattern, handler := range routes {
		routes[pattern] = h.guard(handler)
	}
	return routes
}

// restFallbacks are the patterns that answer unknown REST routes (404) and
// wrong methods (405) with a problem.
var restFallbacks = []string{"/v1/", "/invoke"}

// guard rejects what a browser could be tricked into sending: a request to
// a loopback listener under another host name (DNS rebinding) and a
// cross-origin write (CSRF). /mcp has the same protections.
func (h *restAPI) guard(next http.Handler) http.Handler {
	next = h.cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && local != nil {
			if isLoopback(local.String()) && !isLoopback(r.Host) {
				writeProblem(w, newProblem(http.StatusForbidden, errs.Forbidden,
					fmt.Sprintf("host %q is not allowed on a loopback listener (DNS rebinding protection); use localhost or 127.0.0.1", r.Host)))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// isLoopback reports whether addr (host or host:port) is localhost or a
// loopback IP.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = strings.Trim(addr, "[]")
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func (h *restAPI) fallback(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host}
		if _, pattern := h.methods.Handler(probe); pattern != "" {
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeProblem(w, newProblem(http.StatusMethodNotAllowed, errs.Invalid,
			fmt.Sprintf("%s %s is not allowed; use %s", r.Method, r.URL.Path, strings.Join(allow, ", "))))
		return
	}
	writeProblem(w, newProblem(http.StatusNotFound, errs.NotFound,
		fmt.Sprintf("no route %s %s; GET /v1/openapi.json lists the routes", r.Method, r.URL.Path)))
}

// --- invoke

func (h *restAPI) invoke(w http.ResponseWriter, r *http.Request) {
	var req InvokeRequest
	if !h.readJSON(w, r, &req, true) {
		return
	}
	ref := req.Agent
	switch {
	case ref == "":
		writeProblem(w, newProblem(http.StatusBadRequest, errs.Invalid, "field agent is required"))
		return
	case req.Version != "" && strings.Contains(ref, "@"):
		writeProblem(w, newProblem(http.StatusBadRequest, errs.Invalid, "give the version once: either agent name@version or the version field"))
		return
	case req.Version != "":
		ref += "@" + req.Version
	}
	if !isObjectOrNull(req.Input) {
		writeProblem(w, newProblem(http.StatusBadRequest, errs.Invalid, "field input must be a JSON object"))
		return
	}
	resp, err := h.call(r.Context(), ref, req.Input, req.SessionID)
	if err != nil {
		writeInvokeProblem(w, resp, err)
		return
	}
	out := invokeResponse(resp)
	writeBody(w, http.StatusOK, contentJSON, &out)
}

func (h *restAPI) invokeCompat(w http.ResponseWriter, r *http.Request) {
	var req CompatInvokeRequest
	if !h.readJSON(w, r, &req, false) {
		return
	}
	if req.AgentName == "" {
		writeProblem(w, newProblem(http.StatusBadRequest, errs.Invalid, "field agent_name is required"))
		return
	}
	args, err := json.Marshal(struct {
		Prompt string `json:"prompt"`
	}{req.Prompt})
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	resp, err := h.call(r.Context(), req.AgentName, args, req.SessionID)
	if err != nil {
		writeInvokeProblem(w, resp, err)
		return
	}
	out := CompatInvokeResponse{Response: responseText(resp.Result), SessionID: resp.Session, IsError: resp.Result.IsError}
	writeBody(w, http.StatusOK, contentJSON, &out)
}

// call runs one invocation through the engine, counted for Drain like an
// MCP tools/call.
func (h *restAPI) call(ctx context.Context, ref string, args json.RawMessage, session string) (*agents.Response, error) {
	h.s.inflight.Add(1)
	defer h.s.inflight.Add(-1)
	return h.s.engine.Invoke(ctx, agents.Request{Agent: ref, Args: args, Session: session})
}

func invokeResponse(resp *agents.Response) InvokeResponse {
	r := resp.Result
	out := InvokeResponse{
		SessionID:  resp.Session,
		Agent:      resp.Agent,
		Output:     r.Output,
		Content:    r.Content,
		Usage:      r.Usage,
		IsError:    r.IsError,
		Seq:        resp.Seq,
		DurationMS: float64(resp.Duration.Microseconds()) / 1000,
	}
	if out.Content == nil {
		out.Content = []agents.Content{}
	}
	return out
}

func writeInvokeProblem(w http.ResponseWriter, resp *agents.Response, err error) {
	p := problemFor(err)
	if resp != nil {
		p.SessionID, p.Agent = resp.Session, resp.Agent
		if resp.Result != nil { // it ran, but was not recorded
			res := invokeResponse(resp)
			p.Result = &res
		}
	}
	writeProblem(w, p)
}

// responseText renders a result for POST /invoke (see CompatInvokeResponse).
func responseText(r *agents.Result) string {
	if s, ok := soleString(r.Output); ok {
		return s
	}
	var b strings.Builder
	for i := range r.Content {
		if c := &r.Content[i]; c.Type == "text" {
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(c.Text)
		}
	}
	if b.Len() > 0 {
		return b.String()
	}
	return string(r.Output)
}

// soleString returns the value of an object's only field, if the object
// has exactly one field and it is a string.
func soleString(output json.RawMessage) (string, bool) {
	if !isObject(output) {
		return "", false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(output, &m) != nil || len(m) != 1 {
		return "", false
	}
	for _, v := range m {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s, true
		}
	}
	return "", false
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	return len(raw) > 0 && raw[0] == '{'
}

func isObjectOrNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null" || t[0] == '{'
}

// --- context

func (h *restAPI) history(w http.ResponseWriter, r *http.Request) {
	session := r.PathValue("session_id")
	if err := contextstore.ValidateSession(session); err != nil {
		writeProblem(w, newProblem(http.StatusBadRequest, errs.Invalid, err.Error()))
		return
	}
	q := r.URL.Query()
	limit, ok := intParam(w, q, "limit", contextstore.MaxLimit)
	if !ok {
		return
	}
	before, ok := intParam(w, q, "before", -1)
	if !ok {
		return
	}
	store, err := h.s.store()
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	entries, err := store.History(r.Context(), session, contextstore.HistoryQuery{Before: int64(before), Limit: limit, Last: before == 0})
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	if len(entries) == 0 && before == 0 {
		writeProblem(w, newProblem(http.StatusNotFound, errs.NotFound, fmt.Sprintf("session %q has no recorded context (unknown, or expired)", session)))
		return
	}
	out := HistoryResponse{SessionID: session, Entries: entries}
	if out.Entries == nil {
		out.Entries = []contextstore.Entry{}
	}
	if len(entries) > 0 && entries[0].Seq > 1 {
		out.NextBefore = entries[0].Seq
	}
	writeBody(w, http.StatusOK, contentJSON, &out)
}

func (h *restAPI) sessions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := intParam(w, q, "limit", contextstore.MaxLimit)
	if !ok {
		return
	}
	var sq contextstore.SessionQuery
	sq.Limit = limit
	for _, t := range q["tag"] {
		k, v, found := strings.Cut(t, ":")
		if !found || k == "" {
			writeProblem(w, newProblem(http.StatusBadRequest, errs.Invalid, fmt.Sprintf("tag %q: want key:value", t)))
			return
		}
		if _, dup := sq.Tags[k]; dup {
			writeProblem(w, newProblem(http.StatusBadRequest, errs.Invalid, fmt.Sprintf("tag %q is given twice", k)))
			return
		}
		if sq.Tags == nil {
			sq.Tags = map[string]string{}
		}
		sq.Tags[k] = v
	}
	if s := q.Get("updated_before"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			writeProblem(w, newProblem(http.StatusBadRequest, errs.Invalid, fmt.Sprintf("updated_before %q is not an RFC 3339 time", s)))
			return
		}
		sq.UpdatedBefore = t
	}
	store, err := h.s.store()
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	infos, err := store.Sessions(r.Context(), sq)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	out := SessionsResponse{Sessions: infos}
	if out.Sessions == nil {
		out.Sessions = []contextstore.SessionInfo{}
	}
	if n := len(infos); n > 0 && n == contextstore.ClampLimit(limit) {
		next := infos[n-1].Updated
		out.NextUpdatedBefore = &next
	}
	writeBody(w, http.StatusOK, contentJSON, &out)
}

// intParam reads an optional non-negative integer query parameter, at most
// max (no bound if max < 0). It writes a 400 problem and returns false if
// the value is not one.
func intParam(w http.ResponseWriter, q url.Values, name string, max int) (int, bool) {
	s := q.Get(name)
	if s == "" {
		return 0, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || (max >= 0 && n > max) {
		bound := ""
		if max >= 0 {
			bound = " up to " + strconv.Itoa(max)
		}
		writeProblem(w, newProblem(http.StatusBadRequest, errs.Invalid, fmt.Sprintf("%s %q is not a whole number from 0%s", name, s, bound)))
		return 0, false
	}
	return n, true
}

// --- agents

// DefaultAgentsLimit is how many agents GET /v1/agents returns unless told.
const DefaultAgentsLimit = 100

func (h *restAPI) listAgents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := intParam(w, q, "limit", 1000)
	if !ok {
		return
	}
	if limit == 0 {
		limit = DefaultAgentsLimit
	}
	text := q.Get("q")
	matches := h.s.engine.Registry.Search(agents.Query{Text: text, Tags: q["tag"], Limit: limit})
	out := AgentsResponse{Agents: make([]AgentInfo, len(matches))}
	for i, m := range matches {
		out.Agents[i] = h.info(m.Agent)
		if text != "" {
			out.Agents[i].Score = m.Score
		}
	}
	writeBody(w, http.StatusOK, contentJSON, &out)
}

func (h *restAPI) getAgent(w http.ResponseWriter, r *http.Request) {
	name, version := agents.SplitRef(r.PathValue("agent"))
	versions := h.s.engine.Registry.Versions(name)
	if len(versions) == 0 {
		writeProblem(w, newProblem(http.StatusNotFound, errs.NotFound, fmt.Sprintf("unknown agent %q", name)))
		return
	}
	if version != "" {
		a, err := h.s.engine.Registry.Resolve(name + "@" + version)
		if err != nil {
			writeProblem(w, problemFor(err))
			return
		}
		versions = []agents.Agent{a}
	}
	out := AgentVersionsResponse{Name: name, Versions: make([]AgentInfo, len(versions))}
	for i, a := range versions {
		out.Versions[i] = h.info(a)
	}
	writeBody(w, http.StatusOK, contentJSON, &out)
}

func (h *restAPI) info(a agents.Agent) AgentInfo {
	spec := a.Spec()
	return AgentInfo{AgentView: tools.ViewOf(spec), Runtime: h.reg != nil && h.reg.Registered(spec.Ref())}
}

var errNoRegistrar = errs.E(errs.Forbidden, "runtime registration is not enabled on this server (it needs the server.App that mcptower serve runs)")

func (h *restAPI) register(w http.ResponseWriter, r *http.Request) {
	if h.reg == nil {
		writeProblem(w, problemFor(errNoRegistrar))
		return
	}
	var ad AgentDefinition
	if !h.readJSON(w, r, &ad, false) {
		return
	}
	def, err := ad.Definition()
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	built, err := h.reg.Register(r.Context(), def)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	out := AgentsResponse{Agents: make([]AgentInfo, len(built))}
	for i, a := range built {
		out.Agents[i] = AgentInfo{AgentView: tools.ViewOf(a.Spec()), Runtime: true}
	}
	w.Header().Set("Location", "/v1/agents/"+url.PathEscape(def.Name))
	writeBody(w, http.StatusCreated, contentJSON, &out)
}

func (h *restAPI) unregister(w http.ResponseWriter, r *http.Request) {
	if h.reg == nil {
		writeProblem(w, problemFor(errNoRegistrar))
		return
	}
	ref := r.PathValue("agent")
	name, version := agents.SplitRef(ref)
	if name == "" || version == "" {
		writeProblem(w, newProblem(http.StatusBadRequest, errs.Invalid, fmt.Sprintf("%q: name the version to delete, as /v1/agents/name@version", ref)))
		return
	}
	removed, err := h.reg.Unregister(r.Context(), name, version)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	writeBody(w, http.StatusOK, contentJSON, &UnregisterResponse{Removed: removed})
}

func (h *restAPI) openAPI(w http.ResponseWriter, _ *http.Request) {
	doc, err := h.doc()
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	w.Header().Set("Content-Type", contentJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(doc)
}

// --- bodies

// bufPool recycles request and response buffers. Buffers that grew past
// maxPooledBuffer are dropped rather than kept alive.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBuffer = 64 << 10

func getBuffer() *bytes.Buffer {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBuffer(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuffer {
		bufPool.Put(b)
	}
}

// readJSON reads r's JSON body (at most Options.MaxBodyBytes) into v;
// strict rejects unknown fields. On failure it writes the problem (415,
// 413, 400, or 422 for an errs.Invalid from v's UnmarshalJSON) and returns
// false.
func (h *restAPI) readJSON(w http.ResponseWriter, r *http.Request, v any, strict bool) bool {
	if ct := r.Header.Get("Content-Type"); !isJSONType(ct) {
		w.Header().Set("Accept-Post", contentJSON)
		writeProblem(w, newProblem(http.StatusUnsupportedMediaType, errs.Invalid,
			fmt.Sprintf("Content-Type %q is not JSON; send application/json", ct)))
		return false
	}
	if limit := h.s.opts.MaxBodyBytes; limit > 0 {
		if r.ContentLength > limit {
			writeProblem(w, tooLarge(limit))
			return false
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	buf := getBuffer()
	defer putBuffer(buf)
	if _, err := buf.ReadFrom(r.Body); err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeProblem(w, tooLarge(mbe.Limit))
		} else {
			writeProblem(w, newProblem(http.StatusBadRequest, errs.Invalid, "read request body: "+err.Error()))
		}
		return false
	}
	if len(bytes.TrimSpace(buf.Bytes())) == 0 {
		writeProblem(w, newProblem(http.StatusBadRequest, errs.Invalid, "request body is empty; send a JSON object"))
		return false
	}
	if err := decodeJSON(buf.Bytes(), v, strict); err != nil {
		if _, coded := errors.AsType[*errs.Error](err); coded {
			writeProblem(w, problemFor(err))
		} else {
			writeProblem(w, newProblem(http.StatusBadRequest, errs.Invalid, "request body: "+jsonError(err)))
		}
		return false
	}
	return true
}

func tooLarge(limit int64) *Problem {
	return newProblem(http.StatusRequestEntityTooLarge, errs.Invalid,
		fmt.Sprintf("request body is larger than %d bytes (server.max_body_bytes)", limit))
}

// decodeJSON decodes exactly one JSON value from data into v.
func decodeJSON(data []byte, v any, strict bool) error {
	if !strict {
		return json.Unmarshal(data, v)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON object")
	}
	return nil
}

// jsonError rephrases a decoding error for the caller, without Go type
// names.
func jsonError(err error) string {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field == "" {
			return "must be a JSON object, not " + te.Value
		}
		return fmt.Sprintf("field %s must be %s, not %s", te.Field, jsonKind(te.Type), te.Value)
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("not valid JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "not valid JSON: unexpected end"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another type"
}

// isJSONType accepts application/json and any +json type, with parameters.
func isJSONType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(mt)
	return strings.EqualFold(mt, contentJSON) ||
		(len(mt) > 5 && strings.EqualFold(mt[len(mt)-5:], "+json") && strings.HasPrefix(strings.ToLower(mt), "application/"))
}

// writeBody writes v as JSON with an exact Content-Length.
func writeBody(w http.ResponseWriter, status int, contentType string, v any) {
	buf := getBuffer()
	defer putBuffer(buf)
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		buf.Reset()
		p := newProblem(http.StatusInternalServerError, errs.Internal, "encode response: "+err.Error())
		_ = json.NewEncoder(buf).Encode(p)
		status, contentType = p.Status, contentProblem
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// --- problems

func newProblem(status int, code errs.Code, detail string) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, Code: code.String()}
}

// problemFor translates a domain error into a problem: the one place REST
// maps error codes to HTTP statuses.
func problemFor(err error) *Problem {
	code := errs.CodeOf(err)
	p := newProblem(httpStatus(code), code, err.Error())
	if code == errs.Invalid {
		if ve, ok := schemas.AsValidationError(err); ok {
			p.Field = ve.Path
		}
	}
	return p
}

// httpStatus is the HTTP status of a domain error code.
func httpStatus(c errs.Code) int {
	switch c {
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Invalid:
		return http.StatusUnprocessableEntity
	case errs.Unauthorized:
		return http.StatusUnauthorized
	case errs.Forbidden:
		return http.StatusForbidden
	case errs.RateLimited:
		return http.StatusTooManyRequests
	case errs.Unavailable:
		return http.StatusServiceUnavailable
	case errs.Timeout:
		return http.StatusGatewayTimeout
	case errs.Conflict:
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

func writeProblem(w http.ResponseWriter, p *Problem) {
	writeBody(w, p.Status, contentProblem, p)
}

// allRoutes are the routes Handler serves, by mux pattern: MCP, health and
// REST (/metrics aside, mounted with the metrics).
func (s *Server) allRoutes(reg Registrar) map[string]http.Handler {
	routes := s.routes()
	maps.Copy(routes, s.restRoutes(reg))
	return routes
}
