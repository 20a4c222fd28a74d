package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"mcptower/agents/mcpkind/mcpkindtest"
)

// Federation end to end: a go-sdk client → this mcptower (the binary, over
// HTTP) → an upstream MCP server: the real @modelcontextprotocol/server-
// everything from npm (over stdio and over its Streamable HTTP mode), or a
// second mcptower.

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startEverythingHTTP runs server-everything's Streamable HTTP mode on a
// free loopback port and returns its endpoint.
func startEverythingHTTP(t *testing.T, node, script string) string {
	t.Helper()
	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		cmd := exec.Command(node, script, "streamableHttp")
		cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		var out syncBuffer
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				out.Write([]byte(sc.Text() + "\n"))
				if strings.Contains(sc.Text(), "listening on port") {
					ready <- true
				}
			}
			ready <- false
		}()
		select {
		case ok := <-ready:
			if ok {
				t.Cleanup(func() {
					cmd.Process.Kill()
					cmd.Wait()
				})
				return fmt.Sprintf("http://127.0.0.1:%d/mcp", port)
			}
		case <-time.After(30 * time.Second):
		}
		cmd.Process.Kill()
		cmd.Wait()
		if attempt == 2 {
			t.Fatalf("server-everything (streamableHttp) did not start:\n%s", out.String())
		}
	}
}

// progressRecorder collects the progress notifications a client receives.
type progressRecorder struct {
	mu    sync.Mutex
	byTok map[string][]float64
	first map[string]chan struct{}
}

func newProgressRecorder() *progressRecorder {
	return &progressRecorder{byTok: map[string][]float64{}, first: map[string]chan struct{}{}}
}

func (p *progressRecorder) handler(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
	tok := fmt.Sprint(req.Params.ProgressToken)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.byTok[tok] = append(p.byTok[tok], req.Params.Progress)
	if ch, ok := p.first[tok]; ok {
		close(ch)
		delete(p.first, tok)
	}
}

// expect returns a channel closed at the first notification for tok.
func (p *progressRecorder) expect(tok string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := make(chan struct{})
	p.first[tok] = ch
	return ch
}

func (p *progressRecorder) got(tok string) []float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]float64(nil), p.byTok[tok]...)
}

func resultText(r *mcp.CallToolResult) string {
	var parts []string
	for _, c := range r.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

func callTool(t *testing.T, ctx context.Context, cs *mcp.ClientSession, name string, args map[string]any, meta mcp.Meta) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args, Meta: meta})
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	return res
}

// TestFederationEverything: our client lists server-everything's tools under
// the prefix, calls echo, gets the progress of a long-running tool, has a
// sampling request relayed to it, and cancels a long-running call through
// mcptower — with the upstream over stdio and over Streamable HTTP.
func TestFederationEverything(t *testing.T) {
	node, script := mcpkindtest.Everything(t)
	for _, mode := range []string{"stdio", "streamableHttp"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			upstream := fmt.Sprintf("    command: %q\n    args: [%q, stdio]\n", node, script)
			if mode == "streamableHttp" {
				upstream = fmt.Sprintf("    url: %s\n", startEverythingHTTP(t, node, script))
			}
			cfg := filepath.Join(t.TempDir(), "mcptower.yaml")
			writeFile(t, cfg, "store:\n  url: \"memory:\"\nagents:\n  - name: everything\n    kind: mcp\n"+upstream)
			p := startHTTP(t, testEnvVars(t), "--config", cfg, "--log-level", "debug")
			progress := newProgressRecorder()
			cs := connectHTTP(t, ctx, p.url, &mcp.ClientOptions{
				ProgressNotificationHandler: progress.handler,
				CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
					return &mcp.CreateMessageResult{Role: "assistant", Model: "test-model", Content: &mcp.TextContent{Text: "sampled by the e2e client"}}, nil
				},
			})

			// Tools under the prefix, with schemas and annotations.
			var tools map[string]*mcp.Tool
			deadline := time.Now().Add(10 * time.Second)
			for {
				lt, err := cs.ListTools(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				tools = map[string]*mcp.Tool{}
				for _, tl := range lt.Tools {
					tools[tl.Name] = tl
				}
				// The sampling tool appears after initialization (list_changed).
				if tools["everything_trigger-sampling-request"] != nil || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			for _, want := range []string{"everything_echo", "everything_trigger-long-running-operation", "everything_get-sum", "everything_trigger-sampling-request"} {
				if tools[want] == nil {
					t.Fatalf("tools/list lacks %s: %v", want, tools)
				}
			}
			echo := tools["everything_echo"]
			if !strings.Contains(fmt.Sprint(echo.InputSchema), "message") || echo.Annotations == nil || !echo.Annotations.ReadOnlyHint {
				t.Errorf("echo's schema or annotations were not passed through: %v %+v", echo.InputSchema, echo.Annotations)
			}

			res := callTool(t, ctx, cs, "everything_echo", map[string]any{"message": "hello"}, nil)
			if res.IsError || resultText(res) != "Echo: hello" {
				t.Fatalf("echo: %q (is_error %v)", resultText(res), res.IsError)
			}

			// Progress of a long-running tool reaches our client.
			res = callTool(t, ctx, cs, "everything_trigger-long-running-operation", map[string]any{"duration": 1, "steps": 4}, mcp.Meta{"progressToken": "p1"})
			if res.IsError || !strings.Contains(resultText(res), "Long running operation completed") {
				t.Fatalf("long-running operation: %q", resultText(res))
			}
			// Our client's SDK hands notifications to its handler on another
			// goroutine than the result: give the last one a moment.
			deadline = time.Now().Add(2 * time.Second)
			for len(progress.got("p1")) < 4 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := progress.got("p1"); len(got) != 4 || got[3] != 4 {
				t.Errorf("progress notifications received: %v, want 1..4", got)
			}

			// The upstream's sampling request reaches our client.
			res = callTool(t, ctx, cs, "everything_trigger-sampling-request", map[string]any{"prompt": "hi", "maxTokens": 20}, nil)
			if res.IsError || !strings.Contains(resultText(res), "sampled by the e2e client") {
				t.Errorf("sampling relay: %q (is_error %v)", resultText(res), res.IsError)
			}

			// Cancelling our call cancels the upstream's.
			cctx, ccancel := context.WithCancel(ctx)
			first := progress.expect("p2")
			done := make(chan error, 1)
			start := time.Now()
			go func() {
				_, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: "everything_trigger-long-running-operation",
					Arguments: map[string]any{"duration": 30, "steps": 30}, Meta: mcp.Meta{"progressToken": "p2"}})
				done <- err
			}()
			select {
			case <-first:
			case <-time.After(15 * time.Second):
				t.Fatal("no progress from the long-running call")
			}
			ccancel()
			if err := <-done; err == nil {
				t.Fatal("cancelled call returned a result")
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("cancelled call took %s", d)
			}
			// Over HTTP, the upstream must also have accepted the
			// notification (202) that lean calls send themselves.
			want := "notifications/cancelled sent upstream"
			if mode == "streamableHttp" {
				want = `"msg":"upstream answered notifications/cancelled","upstream":"everything","status":202`
			}
			deadline = time.Now().Add(10 * time.Second)
			for !strings.Contains(p.stderr.String(), want) {
				if time.Now().After(deadline) {
					t.Fatalf("mcptower did not cancel the upstream call (no %s in its log):\n%s", want, p.stderr.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			res = callTool(t, ctx, cs, "everything_get-sum", map[string]any{"a": 2, "b": 3}, nil)
			if res.IsError || !strings.Contains(resultText(res), "5") {
				t.Errorf("call after a cancellation: %q", resultText(res))
			}
			if mode == "stdio" && !strings.Contains(p.stderr.String(), `"msg":"upstream stderr","upstream":"everything"`) {
				t.Errorf("the upstream's stderr is not in our log with upstream=everything")
			}
			cs.Close()
			p.stop(t)
		})
	}
}

// TestFederationChaining: mcptower federating another mcptower over HTTP
// passes the foundation's end-to-end scenario through two hops. The front
// has no built-ins of its own: every tool it lists is the upstream's (prefix
// ""), and both share the context store, so the context session forwarded
// with each call is one conversation on both.
func TestFederationChaining(t *testing.T) {
	for _, protocol := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(protocol, func(t *testing.T) { testChaining(t, protocol) })
	}
}

func testChaining(t *testing.T, protocol string) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	store := "sqlite://" + filepath.Join(dir, "context.db")
	env := testEnvVars(t)
	upCfg := filepath.Join(dir, "upstream.yaml")
	writeFile(t, upCfg, fmt.Sprintf("store:\n  url: %s\n", store))
	up := startHTTP(t, env, "--config", upCfg)

	frontCfg := filepath.Join(dir, "front.yaml")
	writeFile(t, frontCfg, fmt.Sprintf(`server:
  builtins: false
store:
  url: %s
agents:
  - name: tower
    kind: mcp
    url: %s
    prefix: ""
    forward_session: true
    protocol: %s
`, store, up.url, protocol))
	front := startHTTP(t, env, "--config", frontCfg)
	cs := connectHTTP(t, ctx, front.url, nil)
	exerciseClient(t, ctx, cs)

	// Both hops ran and recorded the call, in the one session.
	res := callTool(t, ctx, cs, "context_append", map[string]any{"content": "two hops", "session_id": "chain-1"}, nil)
	if res.IsError {
		t.Fatalf("context_append: %q", resultText(res))
	}
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "context://sessions/chain-1"})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(rr.Contents[0].Text, `"agent":"context_append@1.0.0"`); n != 2 {
		t.Errorf("session chain-1 records the call %d times, want 2 (front and upstream):\n%s", n, rr.Contents[0].Text)
	}
	if !strings.Contains(front.stderr.String(), `"msg":"upstream connected","upstream":"tower"`) || !strings.Contains(front.stderr.String(), `"protocol":"`+protocol+`"`) {
		t.Errorf("the front did not connect to the upstream with protocol %s:\n%s", protocol, front.stderr.String())
	}
	cs.Close()
	front.stop(t)
	up.stop(t)
}

// TestFederationListChanged: the upstream's tool list changes (its config
// is edited), and our connected client gets list_changed and the new tools.
func TestFederationListChanged(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	env := testEnvVars(t)
	upCfg := filepath.Join(dir, "upstream.yaml")
	writeUp := func(name string) {
		writeFile(t, upCfg, fmt.Sprintf("store:\n  url: \"memory:\"\nserver:\n  builtins: false\nagents:\n  - name: %s\n    kind: builtin\n    tool: echo\n", name))
	}
	writeUp("first_echo")
	up := startHTTP(t, env, "--config", upCfg)
	frontCfg := filepath.Join(dir, "front.yaml")
	writeFile(t, frontCfg, fmt.Sprintf("store:\n  url: \"memory:\"\nagents:\n  - name: tower\n    kind: mcp\n    url: %s\n", up.url))
	front := startHTTP(t, env, "--config", frontCfg)
	changed := make(chan struct{}, 10)
	cs := connectHTTP(t, ctx, front.url, &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
		changed <- struct{}{}
	}})
	names := func() map[string]bool {
		lt, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, tl := range lt.Tools {
			m[tl.Name] = true
		}
		return m
	}
	if n := names(); !n["tower_first_echo"] {
		t.Fatalf("tools: %v", n)
	}
	writeUp("second_echo")
	select {
	case <-changed:
	case <-time.After(20 * time.Second):
		t.Fatalf("no list_changed reached our client\nupstream:\n%s\nfront:\n%s", up.stderr.String(), front.stderr.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for n := names(); !n["tower_second_echo"] || n["tower_first_echo"]; n = names() {
		if time.Now().After(deadline) {
			t.Fatalf("after the upstream changed, tools = %v", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	res := callTool(t, ctx, cs, "tower_second_echo", map[string]any{"text": "hi"}, nil)
	if res.IsError || !strings.Contains(resultText(res), "hi") {
		t.Errorf("new tool: %q", resultText(res))
	}
	cs.Close()
	front.stop(t)
	up.stop(t)
}

// procStat returns the parent pid and process group of pid, or ok=false if
// it does not exist.
func procStat(pid int) (ppid, pgrp int, state string, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, "", false
	}
	// pid (comm) state ppid pgrp ...; comm may contain spaces.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ppid, _ = strconv.Atoi(fields[1])
	pgrp, _ = strconv.Atoi(fields[2])
	return ppid, pgrp, fields[0], true
}

// processes returns the pids for which match(ppid, pgrp) holds.
func processes(match func(ppid, pgrp int) bool) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, pgrp, _, ok := procStat(pid); ok && match(ppid, pgrp) {
			out = append(out, pid)
		}
	}
	return out
}

// TestFederationCrash: the upstream process is killed mid-call: the call in
// flight gets a clear "unavailable" tool error, the next call succeeds on a
// restarted process, the dead one was reaped, and after shutdown no process
// of the upstream remains.
func TestFederationCrash(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	node, script := mcpkindtest.Everything(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cfg := filepath.Join(t.TempDir(), "mcptower.yaml")
	writeFile(t, cfg, fmt.Sprintf("store:\n  url: \"memory:\"\nagents:\n  - name: everything\n    kind: mcp\n    command: %q\n    args: [%q, stdio]\n    restart_backoff: 100ms\n", node, script))
	p := startHTTP(t, testEnvVars(t), "--config", cfg)
	server := p.cmd.Process.Pid
	children := func() []int { return processes(func(ppid, _ int) bool { return ppid == server }) }
	kids := children()
	if len(kids) != 1 {
		t.Fatalf("children of mcptower: %v, want the one upstream", kids)
	}
	first := kids[0]

	progress := newProgressRecorder()
	cs := connectHTTP(t, ctx, p.url, &mcp.ClientOptions{ProgressNotificationHandler: progress.handler})
	started := progress.expect("crash")
	type outcome struct {
		res *mcp.CallToolResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "everything_trigger-long-running-operation",
			Arguments: map[string]any{"duration": 30, "steps": 30}, Meta: mcp.Meta{"progressToken": "crash"}})
		done <- outcome{res, err}
	}()
	select {
	case <-started:
	case <-time.After(15 * time.Second):
		t.Fatal("the long-running call made no progress")
	}
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var o outcome
	select {
	case o = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the in-flight call did not end when its upstream died")
	}
	if o.err != nil {
		t.Fatalf("in-flight call: protocol error %v, want a tool error", o.err)
	}
	text := resultText(o.res)
	if !o.res.IsError || o.res.Meta["mcptower/error_code"] != "unavailable" || !strings.Contains(text, "exited during the call") || !strings.Contains(text, "signal: killed") {
		t.Errorf("in-flight call result: is_error %v, meta %v, text %q", o.res.IsError, o.res.Meta, text)
	}

	res := callTool(t, ctx, cs, "everything_echo", map[string]any{"message": "after restart"}, nil)
	if res.IsError || resultText(res) != "Echo: after restart" {
		t.Fatalf("call after the restart: %q", resultText(res))
	}
	kids = children()
	if len(kids) != 1 || kids[0] == first {
		t.Fatalf("children after the restart: %v (the killed one was %d)", kids, first)
	}
	second := kids[0]
	if _, _, state, ok := procStat(first); ok {
		t.Errorf("the killed upstream %d is still in the process table (state %s): not reaped", first, state)
	}

	cs.Close()
	p.stop(t)
	for _, pid := range []int{first, second} {
		if _, _, state, ok := procStat(pid); ok {
			t.Errorf("upstream process %d remains after shutdown (state %s)", pid, state)
		}
		if left := processes(func(_, pgrp int) bool { return pgrp == pid }); len(left) > 0 {
			t.Errorf("processes of upstream group %d remain after shutdown: %v", pid, left)
		}
	}
}

// TestExampleFederation runs examples/federation as its README says: a
// second mcptower, and the front federating it and server-everything (run
// with npx).
func TestExampleFederation(t *testing.T) {
	mcpkindtest.Everything(t) // skips (or fails in CI) without node and npm
	if _, err := exec.LookPath("npx"); err != nil {
		t.Skip("npx not found")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	for _, f := range []string{"mcptower.yaml", "upstream.yaml"} {
		out, err := exec.Command(binary, "validate", "--config", "../../examples/federation/"+f).CombinedOutput()
		if err != nil {
			t.Fatalf("examples/federation/%s does not validate: %v\n%s", f, err, out)
		}
	}
	env := testEnvVars(t)
	if dir, err := mcpkindtest.CacheDir(); err == nil {
		// npx keeps what it downloads in ~/.npm: share one across runs (the
		// upstream gets HOME, not npm_config_* variables).
		home := ""
		for _, kv := range env { // the last HOME wins, as in exec
			if h, ok := strings.CutPrefix(kv, "HOME="); ok {
				home = h
			}
		}
		cache := filepath.Join(dir, "npm-cache")
		if err := os.MkdirAll(cache, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(cache, filepath.Join(home, ".npm")); err != nil {
			t.Fatal(err)
		}
	}
	up := startHTTP(t, env, "--config", "../../examples/federation/upstream.yaml")
	addr := strings.TrimSuffix(strings.TrimPrefix(up.url, "http://"), "/mcp")
	front := startHTTP(t, append(env, "TOWER_ADDR="+addr), "--config", "../../examples/federation/mcptower.yaml")
	cs := connectHTTP(t, ctx, front.url, nil)
	var names map[string]bool
	deadline := time.Now().Add(15 * time.Second)
	for { // tower starts lazily: its tools appear when it answers
		lt, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		names = map[string]bool{}
		for _, tl := range lt.Tools {
			names[tl.Name] = true
		}
		if names["tower_shout"] || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{"everything_echo", "tower_shout", "context_history"} {
		if !names[want] {
			t.Errorf("tools/list lacks %s: %v", want, names)
		}
	}
	if names["everything_get-env"] {
		t.Errorf("everything_get-env is excluded by the example, but listed")
	}
	res := callTool(t, ctx, cs, "tower_shout", map[string]any{"text": "hello twice"}, nil)
	if res.IsError || !strings.Contains(resultText(res), "hello twice") {
		t.Errorf("tower_shout: %q", resultText(res))
	}
	res = callTool(t, ctx, cs, "everything_echo", map[string]any{"message": "hi"}, nil)
	if res.IsError || resultText(res) != "Echo: hi" {
		t.Errorf("everything_echo: %q", resultText(res))
	}
	cs.Close()
	front.stop(t)
	up.stop(t)
}

// TestFederationReload: config reloads start, replace and stop upstreams
// (here another mcptower over stdio): a changed definition replaces the old
// upstream, whose process is stopped and reaped; an upstream that cannot
// start leaves the running config alone; a removed one takes its tools and
// its process with it.
func TestFederationReload(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cfg := filepath.Join(t.TempDir(), "mcptower.yaml")
	write := func(agentsYAML string) {
		writeFile(t, cfg, "store:\n  url: \"memory:\"\nserver:\n  builtins: false\nagents:\n"+agentsYAML)
	}
	inner := func(prefix string) string {
		return fmt.Sprintf("  - name: inner\n    kind: mcp\n    command: %q\n    args: [serve, --stdio, --store, \"memory:\", --no-reload]\n    prefix: %s\n", binary, prefix)
	}
	write(inner("inner"))
	p := startHTTP(t, testEnvVars(t), "--config", cfg)
	server := p.cmd.Process.Pid
	children := func() []int { return processes(func(ppid, _ int) bool { return ppid == server }) }
	changed := make(chan struct{}, 10)
	cs := connectHTTP(t, ctx, p.url, &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
		changed <- struct{}{}
	}})
	names := func() map[string]bool {
		lt, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, tl := range lt.Tools {
			m[tl.Name] = true
		}
		return m
	}
	waitTools := func(why string, ok func(map[string]bool) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for n := names(); !ok(n); n = names() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: tools = %v\n%s", why, n, p.stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if n := names(); !n["inner_agents_search"] {
		t.Fatalf("tools: %v", n)
	}
	first := children()
	if len(first) != 1 {
		t.Fatalf("children: %v", first)
	}

	// A changed definition replaces the upstream.
	write(inner("deep"))
	waitTools("after changing the prefix", func(n map[string]bool) bool { return n["deep_agents_search"] && !n["inner_agents_search"] })
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Error("no list_changed after the reload")
	}
	kids := children()
	if len(kids) != 1 || kids[0] == first[0] {
		t.Errorf("children after the replacement: %v (before: %v)", kids, first)
	}
	if _, _, state, ok := procStat(first[0]); ok {
		t.Errorf("the replaced upstream %d is still in the process table (state %s)", first[0], state)
	}

	// An upstream that cannot start leaves everything as it was.
	write(inner("deep") + "  - name: broken\n    kind: mcp\n    command: /nonexistent/server\n")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.stderr.String(), "/nonexistent/server") {
		if time.Now().After(deadline) {
			t.Fatalf("the failing upstream was not reported:\n%s", p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(p.stderr.String(), "config reload failed") {
		t.Errorf("reload failure not logged")
	}
	res := callTool(t, ctx, cs, "deep_agents_search", map[string]any{"query": "context"}, nil)
	if res.IsError {
		t.Errorf("after a failed reload: %q", resultText(res))
	}

	// Removing the upstream removes its tools and its process.
	write("  - name: echo\n    kind: builtin\n    tool: echo\n")
	waitTools("after removing the upstream", func(n map[string]bool) bool { return n["echo"] && !n["deep_agents_search"] })
	deadline = time.Now().Add(10 * time.Second)
	for len(children()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("children after removing the upstream: %v", children())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cs.Close()
	p.stop(t)
}
