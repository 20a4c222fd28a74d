package server

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/agents"
	"mcptower/contextstore"
	"mcptower/internal/errs"
	"mcptower/tools"
)

// Resource URIs.
const (
	URISessions        = "context://sessions"
	URISessionTemplate = "context://sessions/{session}"
	URISessionPrefix   = "context://sessions/"
	URICatalog         = "agents://catalog"
)

// Bounds of what one resources/read returns.
const (
	resourceSessions = 100
	resourceEntries  = 200
)

func (s *Server) addResources() {
	s.mcp.AddResource(&mcp.Resource{
		URI:         URISessions,
		Name:        "sessions",
		Title:       "Context sessions",
		Description: "The most recently updated context sessions, with their tags and entry counts.",
		MIMEType:    "application/json",
	}, s.readSessions)
	s.mcp.AddResourceTemplate(&mcp.ResourceTemplate{
		URITemplate: URISessionTemplate,
		Name:        "session",
		Title:       "Session context",
		Description: "The recorded context of one session (its newest entries, oldest first). Subscribe to be notified of appends.",
		MIMEType:    "application/json",
	}, s.readSession)
	s.mcp.AddResource(&mcp.Resource{
		URI:         URICatalog,
		Name:        "catalog",
		Title:       "Agent catalog",
		Description: "Every registered agent and version, with schemas, tags and metadata.",
		MIMEType:    "application/json",
	}, s.readCatalog)
}

func jsonResource(uri string, v any) (*mcp.ReadResourceResult, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: "application/json", Text: string(data)}}}, nil
}

func (s *Server) store() (contextstore.Store, error) {
	if s.engine.Store == nil {
		return nil, errs.E(errs.Unavailable, "this server runs without a context store")
	}
	return s.engine.Store, nil
}

// sessionsDoc is the content of context://sessions.
type sessionsDoc struct {
	Sessions []sessionView `json:"sessions"`
}

type sessionView struct {
	contextstore.SessionInfo
	URI string `json:"uri"`
}

func (s *Server) readSessions(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	st, err := s.store()
	if err != nil {
		return nil, rpcError(err)
	}
	infos, err := st.Sessions(ctx, contextstore.SessionQuery{Limit: resourceSessions})
	if err != nil {
		return nil, rpcError(err)
	}
	doc := sessionsDoc{Sessions: make([]sessionView, len(infos))}
	for i, info := range infos {
		doc.Sessions[i] = sessionView{SessionInfo: info, URI: URISessionPrefix + info.ID}
	}
	return jsonResource(req.Params.URI, doc)
}

// sessionDoc is the content of context://sessions/{session}.
type sessionDoc struct {
	Session string               `json:"session"`
	Entries []contextstore.Entry `json:"entries"`
	// Truncated says older entries exist; page them with context_history.
	Truncated bool `json:"truncated,omitempty"`
	// Usage sums the usage recorded on every entry of the session (not
	// only those listed); absent when none recorded any.
	Usage *sessionUsage `json:"usage,omitempty"`
}

// sessionUsage sums what a session's calls consumed.
type sessionUsage struct {
	// Calls counts the entries that recorded usage.
	Calls        int64   `json:"calls"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	CostUSD      float64 `json:"cost_usd"`
}

// add sums the usage recorded on entries: the engine's call records (role
// tool, with an agent) carry it as "usage".
func (u *sessionUsage) add(entries []contextstore.Entry) {
	for _, e := range entries {
		if e.Role != contextstore.RoleTool || e.Agent == "" || !bytes.Contains(e.Content, []byte(`"usage"`)) {
			continue
		}
		var rec struct {
			Usage *agents.Usage `json:"usage"`
		}
		if json.Unmarshal(e.Content, &rec) != nil || rec.Usage == nil {
			continue
		}
		u.Calls++
		u.InputTokens += rec.Usage.InputTokens
		u.OutputTokens += rec.Usage.OutputTokens
		u.CostUSD += rec.Usage.CostUSD
	}
}

// usageOf sums the usage of a whole session: newest are its newest entries,
// already read; older ones are paged backwards.
func usageOf(ctx context.Context, st contextstore.Store, session string, newest []contextstore.Entry) (*sessionUsage, error) {
	var u sessionUsage
	u.add(newest)
	if len(newest) > 0 {
		for before := newest[0].Seq; before > 1; {
			page, err := st.History(ctx, session, contextstore.HistoryQuery{Before: before, Limit: contextstore.MaxLimit})
			if err != nil {
				return nil, err
			}
			if len(page) == 0 {
				break
			}
			u.add(page)
			before = page[0].Seq
		}
	}
	if u.Calls == 0 {
		return nil, nil
	}
	u.CostUSD = math.Round(u.CostUSD*1e9) / 1e9
	return &u, nil
}

func (s *Server) readSession(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	session, ok := strings.CutPrefix(req.Params.URI, URISessionPrefix)
	if !ok || contextstore.ValidateSession(session) != nil {
		return nil, mcp.ResourceNotFoundError(req.Params.URI)
	}
	st, err := s.store()
	if err != nil {
		return nil, rpcError(err)
	}
	entries, err := st.History(ctx, session, contextstore.HistoryQuery{Last: true, Limit: resourceEntries})
	if err != nil {
		return nil, rpcError(err)
	}
	if entries == nil {
		entries = []contextstore.Entry{}
	}
	doc := sessionDoc{Session: session, Entries: entries, Truncated: len(entries) > 0 && entries[0].Seq > 1}
	if doc.Usage, err = usageOf(ctx, st, session, entries); err != nil {
		return nil, rpcError(err)
	}
	return jsonResource(req.Params.URI, doc)
}

// catalogDoc is the content of agents://catalog.
type catalogDoc struct {
	Agents []tools.AgentView `json:"agents"`
}

func (s *Server) readCatalog(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	all := s.engine.Registry.All()
	doc := catalogDoc{Agents: make([]tools.AgentView, len(all))}
	for i, a := range all {
		doc.Agents[i] = tools.ViewOf(a.Spec())
	}
	return jsonResource(req.Params.URI, doc)
}

// watches turns store appends into notifications/resources/updated for
// subscribed sessions. One store Watch runs per subscribed context session,
// shared by every MCP session subscribed to it, so it works across replicas
// with a shared store.
type watches struct {
	s      *Server
	mu     sync.Mutex
	active map[string]*watch // by URI
	owned  map[string]bool   // URIs of resources added with AddResource
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// allow accepts subscriptions to a resource published with AddResource;
// its owner calls ResourceUpdated.
func (w *watches) allow(uri string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.owned == nil {
		w.owned = map[string]bool{}
	}
	w.owned[uri] = true
}

func (w *watches) allowed(uri string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.owned[uri]
}

type watch struct {
	refs   int
	cancel context.CancelFunc
}

func newWatches(s *Server) *watches {
	ctx, cancel := context.WithCancel(context.Background())
	return &watches{s: s, active: map[string]*watch{}, ctx: ctx, cancel: cancel}
}

func (w *watches) subscribe(_ context.Context, req *mcp.SubscribeRequest) error {
	uri := req.Params.URI
	switch {
	case uri == URICatalog || uri == URISessions || w.allowed(uri):
		return nil // notified on registry changes, or by the resource's owner
	case strings.HasPrefix(uri, URISessionPrefix):
	default:
		return mcp.ResourceNotFoundError(uri)
	}
	session := strings.TrimPrefix(uri, URISessionPrefix)
	if contextstore.ValidateSession(session) != nil {
		return mcp.ResourceNotFoundError(uri)
	}
	st, err := w.s.store()
	if err != nil {
		return rpcError(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if a := w.active[uri]; a != nil {
		a.refs++
		return nil
	}
	ctx, cancel := context.WithCancel(w.ctx)
	ch, err := st.Watch(ctx, session)
	if err != nil {
		cancel()
		return rpcError(err)
	}
	w.active[uri] = &watch{refs: 1, cancel: cancel}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for range ch {
			if err := w.s.mcp.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: uri}); err != nil {
				w.s.logger.Debug("resource updated notification failed", "uri", uri, "error", err)
			}
		}
	}()
	return nil
}

func (w *watches) unsubscribe(_ context.Context, req *mcp.UnsubscribeRequest) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if a := w.active[req.Params.URI]; a != nil {
		a.refs--
		if a.refs <= 0 {
			a.cancel()
			delete(w.active, req.Params.URI)
		}
	}
	return nil
}

func (w *watches) catalogChanged() {
	_ = w.s.mcp.ResourceUpdated(w.ctx, &mcp.ResourceUpdatedNotificationParams{URI: URICatalog})
}

func (w *watches) close() {
	w.cancel()
	w.wg.Wait()
}
