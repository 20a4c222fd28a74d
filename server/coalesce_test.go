package server_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mcptower/agents"
	"mcptower/server"
)

// countingListener counts the writes made to its connections.
type countingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, writes: &l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestCoalescedFlushes checks how the answer to a tools/call POST reaches
// the socket: a quick call in one write (headers, priming event, response,
// end of body), while a slow call shows its progress notifications at once,
// and its headers after the flush delay even when it sends nothing.
func TestCoalescedFlushes(t *testing.T) {
	// Long enough that no held flush times out during the quick call, even
	// under the race detector.
	defer server.SetFlushDelay(time.Minute)()
	env := newTestEnv(t, nil)
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	held, err := agents.Func(agents.Spec{Name: "held", Description: "Reports progress, then waits to be released."},
		func(ctx context.Context, call *agents.Call) (*agents.Result, error) {
			_ = call.Client.Progress(ctx, 1, 2, "started")
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return &agents.Result{Content: []agents.Content{agents.Text("released")}}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.reg.Add(held); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	ts := httptest.NewUnstartedServer(env.srv.Handler())
	ts.Listener = cl
	ts.Start()
	t.Cleanup(ts.Close)
	c := &rawClient{t: t, url: ts.URL + "/mcp"}
	c.initialize()

	before := cl.writes.Load()
	r := c.do("POST", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"text":"hi"`) {
		t.Fatalf("echo: %d %s", r.status, r.body)
	}
	if n := cl.writes.Load() - before; n != 1 {
		t.Errorf("a quick call's answer took %d writes, want 1:\n%s", n, r.body)
	}

	// A slow call: headers and the progress notification arrive while the
	// agent still works.
	req, _ := http.NewRequest("POST", c.url, strings.NewReader(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"held","arguments":{},"_meta":{"progressToken":"p"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", c.session)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	resp, err := http.DefaultClient.Do(req) // returns with the headers
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	gotProgress := make(chan bool, 1)
	go func() {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				gotProgress <- false
				return
			}
			if strings.Contains(line, "notifications/progress") {
				gotProgress <- true
				return
			}
		}
	}()
	select {
	case ok := <-gotProgress:
		if !ok {
			t.Fatal("stream ended before the progress notification")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the progress notification did not arrive while the call was in progress")
	}
	once.Do(func() { close(release) })
	rest := new(strings.Builder)
	if _, err := bufio.NewReader(br).WriteTo(rest); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rest.String(), "released") {
		t.Errorf("rest of the stream = %q, want the result", rest)
	}

	// A slow call that sends nothing: its headers still come, after the
	// flush delay, while it works.
	server.SetFlushDelay(10 * time.Millisecond)
	release2 := make(chan struct{})
	quiet, err := agents.Func(agents.Spec{Name: "quiet", Description: "Waits to be released."},
		func(ctx context.Context, call *agents.Call) (*agents.Result, error) {
			select {
			case <-release2:
			case <-ctx.Done():
			}
			return &agents.Result{Content: []agents.Content{agents.Text("done")}}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.reg.Add(quiet); err != nil {
		t.Fatal(err)
	}
	req, _ = http.NewRequest("POST", c.url, strings.NewReader(`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"quiet","arguments":{}}}`))
	req.Header = resp.Request.Header.Clone()
	headers := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		headers <- err
	}()
	select {
	case err := <-headers:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Error("no response headers while the call was in progress")
	}
	close(release2)
}
