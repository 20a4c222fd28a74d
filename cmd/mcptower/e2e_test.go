package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// binary is the mcptower binary built once for the end-to-end tests, so
// they run the real program as Claude Desktop or an HTTP host would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mcptower-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "mcptower")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build mcptower: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testEnvVars isolates a spawned server from the developer's data dir and
// config.
func testEnvVars(t *testing.T) []string {
	home := t.TempDir()
	return append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+filepath.Join(home, "data"), "MCPTOWER_CONFIG=", "MCPTOWER_STORE=")
}

// exerciseClient is the end-to-end scenario both transports must pass: list
// tools, call a built-in, read the session's context resource and find the
// call recorded there.
func exerciseClient(t *testing.T, ctx context.Context, cs *mcp.ClientSession) {
	t.Helper()
	lt, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	names := map[string]bool{}
	for _, tool := range lt.Tools {
		names[tool.Name] = true
		// ask (the default sampling agent) answers with text.
		if tool.OutputSchema == nil && tool.Name != "ask" {
			t.Errorf("tool %s has no output schema", tool.Name)
		}
	}
	for _, want := range []string{"context_history", "context_search", "context_append", "agents_search"} {
		if !names[want] {
			t.Errorf("tools/list lacks %s (got %v)", want, names)
		}
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "context_append", Arguments: map[string]any{"content": "e2e note"}})
	if err != nil {
		t.Fatalf("tools/call: %v", err)
	}
	if res.IsError {
		t.Fatalf("tools/call failed: %v", res.Content)
	}
	session, _ := res.Meta["mcptower/session_id"].(string)
	if session == "" {
		t.Fatalf("result _meta has no session: %v", res.Meta)
	}
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "context://sessions/" + session})
	if err != nil {
		t.Fatalf("resources/read: %v", err)
	}
	var doc struct {
		Entries []struct {
			Role    string          `json:"role"`
			Agent   string          `json:"agent"`
			Content json.RawMessage `json:"content"`
		} `json:"entries"`
	}
	if err := json.Unmarshal([]byte(rr.Contents[0].Text), &doc); err != nil {
		t.Fatalf("session resource is not JSON: %v", err)
	}
	var sawNote, sawCall bool
	for _, e := range doc.Entries {
		if e.Role == "user" && string(e.Content) == `"e2e note"` {
			sawNote = true
		}
		if e.Role == "tool" && e.Agent == "context_append@1.0.0" && strings.Contains(string(e.Content), `"input":{"content":"e2e note"}`) {
			sawCall = true
		}
	}
	if !sawNote || !sawCall {
		t.Errorf("session %s context lacks the note (%v) or the recorded call (%v): %s", session, sawNote, sawCall, rr.Contents[0].Text)
	}
}

func TestE2EStdio(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.Command(binary, "serve", "--stdio", "--log-format", "json")
	cmd.Env = testEnvVars(t)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e-stdio", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect over stdio: %v\nstderr: %s", err, stderr.String())
	}
	exerciseClient(t, ctx, cs)
	if err := cs.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	// Logs go to stderr only: stdout carried nothing but JSON-RPC, or the
	// client would have failed to parse it. Check stderr has the JSON logs.
	if !strings.Contains(stderr.String(), `"msg":"serving MCP over stdio"`) {
		t.Errorf("stderr lacks the startup log: %s", stderr.String())
	}
}

// serverProc is a running "mcptower serve" over HTTP.
type serverProc struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	done   chan error
}

// startHTTP starts the binary on a free port and waits for its URL.
func startHTTP(t *testing.T, env []string, args ...string) *serverProc {
	t.Helper()
	args = append([]string{"serve", "--http", "127.0.0.1:0", "--log-format", "json"}, args...)
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	pr, pw := io.Pipe()
	p := &serverProc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			p.stderr.Write([]byte(line + "\n"))
			var rec struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving MCP over HTTP" {
				urls <- rec.URL
			}
		}
	}()
	go func() {
		p.done <- cmd.Wait()
		pw.Close()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case p.url = <-urls:
	case err := <-p.done:
		t.Fatalf("server exited before serving: %v\n%s", err, p.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start:\n%s", p.stderr.String())
	}
	return p
}

// stop sends SIGTERM and expects a clean exit.
func (p *serverProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("server exit after SIGTERM: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not stop on SIGTERM:\n%s", p.stderr.String())
	}
}

func connectHTTP(t *testing.T, ctx context.Context, url string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e-http", Version: "1"}, opts)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url}, nil)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func TestE2EHTTP(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	p := startHTTP(t, testEnvVars(t))
	cs := connectHTTP(t, ctx, p.url, nil)
	exerciseClient(t, ctx, cs)
	cs.Close()
	p.stop(t)
}

// TestE2ERestartKeepsContext: context written before a restart is read
// after it, with the default SQLite store.
func TestE2ERestartKeepsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	env := testEnvVars(t)
	p := startHTTP(t, env)
	cs := connectHTTP(t, ctx, p.url, nil)
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "context_append", Arguments: map[string]any{"content": "survives restarts", "session_id": "restart-1"}})
	if err != nil || res.IsError {
		t.Fatalf("append: %v %v", err, res)
	}
	cs.Close()
	p.stop(t)

	p = startHTTP(t, env)
	cs = connectHTTP(t, ctx, p.url, nil)
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "context://sessions/restart-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rr.Contents[0].Text, `"content":"survives restarts"`) {
		t.Errorf("after restart, session lost its entry: %s", rr.Contents[0].Text)
	}
	cs.Close()
	p.stop(t)
}

// TestE2EConfigReload: editing the config adds and removes agents on a
// running server, and a connected client receives list_changed; SIGHUP
// reloads too.
func TestE2EConfigReload(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	path := filepath.Join(dir, "mcptower.yaml")
	write := func(name string) {
		t.Helper()
		cfg := fmt.Sprintf("store:\n  url: \"memory:\"\nagents:\n  - name: %s\n    kind: builtin\n    tool: echo\n", name)
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("first_echo")
	p := startHTTP(t, testEnvVars(t), "--config", path)
	changed := make(chan struct{}, 10)
	cs := connectHTTP(t, ctx, p.url, &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
		changed <- struct{}{}
	}})
	toolNames := func() map[string]bool {
		lt, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, tool := range lt.Tools {
			m[tool.Name] = true
		}
		return m
	}
	if n := toolNames(); !n["first_echo"] {
		t.Fatalf("configured agent missing: %v", n)
	}
	waitChanged := func(why string) {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(20 * time.Second):
			t.Fatalf("no notifications/tools/list_changed after %s\n%s", why, p.stderr.String())
		}
	}

	write("second_echo") // watched file: picked up by polling
	waitChanged("editing the config")
	deadline := time.Now().Add(10 * time.Second)
	for n := toolNames(); !n["second_echo"] || n["first_echo"]; n = toolNames() {
		if time.Now().After(deadline) {
			t.Fatalf("after reload tools = %v, want second_echo and not first_echo", n)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A broken edit keeps the running config and says why.
	if err := os.WriteFile(path, []byte("agents:\n  - name: x\n    kind: nope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for !strings.Contains(p.stderr.String(), "config reload failed") {
		if time.Now().After(deadline) {
			t.Fatalf("broken config was not reported:\n%s", p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := toolNames(); !n["second_echo"] {
		t.Errorf("broken config dropped agents: %v", n)
	}

	// SIGHUP reloads as well (the watcher may also fire; either is fine).
	write("third_echo")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitChanged("SIGHUP")
	deadline = time.Now().Add(10 * time.Second)
	for n := toolNames(); !n["third_echo"]; n = toolNames() {
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP tools = %v", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cs.Close()
	p.stop(t)
}

// syncBuffer is a goroutine-safe bytes buffer for captured stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestExampleHostConfigs launches the servers that the Claude Desktop and VS
// Code snippets in examples/hosts describe, as those hosts would, and checks
// the example config file validates.
func TestExampleHostConfigs(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	type stdioServer struct {
		Type    string   `json:"type"`
		Command string   `json:"command"`
		Args    []string `json:"args"`
	}
	var claude struct {
		MCPServers map[string]stdioServer `json:"mcpServers"`
	}
	var vscode struct {
		Servers map[string]stdioServer `json:"servers"`
	}
	for file, v := range map[string]any{
		"../../examples/hosts/claude_desktop_config.json": &claude,
		"../../examples/hosts/.vscode/mcp.json":           &vscode,
	} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	for name, s := range map[string]stdioServer{"claude": claude.MCPServers["mcptower"], "vscode": vscode.Servers["mcptower"]} {
		if s.Command != "mcptower" {
			t.Fatalf("%s: command %q, want mcptower", name, s.Command)
		}
		cmd := exec.Command(binary, s.Args...)
		cmd.Env = testEnvVars(t)
		client := mcp.NewClient(&mcp.Implementation{Name: name, Version: "1"}, nil)
		cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := cs.ListTools(ctx, nil); err != nil {
			t.Errorf("%s: tools/list: %v", name, err)
		}
		cs.Close()
	}

	out, err := exec.Command(binary, "validate", "--config", "../../examples/mcptower.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("examples/mcptower.yaml does not validate: %v\n%s", err, out)
	}
}

// TestCLI covers the commands' exit codes and output shapes.
func TestCLI(t *testing.T) {
	env := testEnvVars(t)
	run := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	tests := []struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		{[]string{"version"}, 0, "mcptower "},
		{[]string{"help"}, 0, "Commands:"},
		{[]string{}, 2, "Usage:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"serve", "--help"}, 0, "--stdio"},
		{[]string{"serve", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"call", "context_append", "--input", `{"content":"cli note"}`, "--session", "cli-1"}, 0, `"session": "cli-1"`},
		{[]string{"history", "cli-1"}, 0, "cli note"},
		{[]string{"history"}, 0, "cli-1"},
		{[]string{"call", "context_append", "--input", `{"content":1,"bogus":2}`}, 2, `unknown field(s): "bogus"`},
		{[]string{"call", "no_such_agent"}, 3, `unknown agent "no_such_agent"`},
		{[]string{"call", "context_append", "--input", "{"}, 2, "not valid JSON"},
		{[]string{"agents", "context"}, 0, "context_history"},
		{[]string{"agents", "--json", "--tag", "search"}, 0, `"name": "agents_search"`},
		{[]string{"validate", "--config", "/nonexistent.yaml"}, 1, "no such file"},
		{[]string{"bench"}, 2, "--tool"},
		{[]string{"serve", "--store", "bogus://x"}, 2, `unknown scheme "bogus"`},
	}
	for _, tt := range tests {
		out, code := run(tt.args...)
		if code != tt.wantCode || !strings.Contains(out, tt.wantOut) {
			t.Errorf("mcptower %s: exit %d, want %d; output should contain %q:\n%s", strings.Join(tt.args, " "), code, tt.wantCode, tt.wantOut, out)
		}
	}
}

// TestBenchCompare: mcptower bench --baseline-url measures two endpoints in
// alternating rounds of one run and reports the overhead.
func TestBenchCompare(t *testing.T) {
	p := startHTTP(t, testEnvVars(t), "--store", "none")
	cmd := exec.Command(binary, "bench", "--url", p.url, "--baseline-url", p.url, "--tool", "agents_search",
		"--args", `{"query":"context"}`, "-c", "2", "-n", "40", "--rounds", "2", "--json")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	var c struct {
		Target, Baseline []struct{ Requests, Errors int }
		OverheadP50MS    *float64 `json:"overhead_p50_ms"`
	}
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("bench --json output: %v\n%s", err, out)
	}
	if len(c.Target) != 2 || len(c.Baseline) != 2 || c.OverheadP50MS == nil {
		t.Fatalf("want 2 rounds per side and an overhead, got %s", out)
	}
	for _, r := range append(c.Target, c.Baseline...) {
		if r.Requests != 40 || r.Errors != 0 {
			t.Errorf("round: %d requests, %d errors; want 40, 0", r.Requests, r.Errors)
		}
	}
	p.stop(t)
}
