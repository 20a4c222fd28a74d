package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/tools/txtar"

	"mcptower/contextstore"
)

var update = flag.Bool("update", false, "rewrite golden transcripts in testdata/golden")

// TestGolden replays each testdata/golden/*.txtar: the "client" section is a
// list of JSON-RPC messages sent to the server over an in-memory transport,
// interleaved with directives:
//
//	#! register NAME       register a typed echo agent NAME at runtime
//	#! unregister NAME     remove it
//	#! append SESSION TEXT append an entry to a session behind the server's back
//	#! expect METHOD       wait for a notification with METHOD
//
// Requests the server sends to the client (sampling, elicitation) are
// answered with the results in the "replies" section, in order.
//
// Every message the server sends is written, normalized (ids, times,
// durations), to the "server" section, which must match. Run with -update to
// rewrite the sections after an intended change.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			runGolden(t, file)
		})
	}
}

func runGolden(t *testing.T, file string) {
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var client, want, replies []byte
	for _, f := range ar.Files {
		switch f.Name {
		case "client":
			client = f.Data
		case "replies":
			replies = f.Data
		case "server":
			want = f.Data
		}
	}
	env := newTestEnv(t, nil)
	var runs atomic.Int64
	if err := env.reg.Add(askAgent(t, &runs)); err != nil {
		t.Fatal(err)
	}
	// Server→client requests are answered with the "replies" section's
	// results, in order.
	var queued []json.RawMessage
	for _, r := range splitMessages(t, replies) {
		queued = append(queued, json.RawMessage(r))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ct, st := mcp.NewInMemoryTransports()
	if _, err := env.srv.Connect(ctx, st); err != nil {
		t.Fatal(err)
	}
	conn, err := ct.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	msgs := make(chan jsonrpc.Message, 100)
	go func() {
		defer close(msgs)
		for {
			m, err := conn.Read(ctx)
			if err != nil {
				return
			}
			msgs <- m
		}
	}()

	var got bytes.Buffer
	record := func(m jsonrpc.Message) {
		data, err := jsonrpc.EncodeMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		got.Write(normalize(data))
		got.WriteByte('\n')
	}
	// await reads until match returns true, recording everything read.
	await := func(what string, match func(jsonrpc.Message) bool) {
		t.Helper()
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("connection closed while waiting for %s", what)
				}
				record(m)
				if r, ok := m.(*jsonrpc.Request); ok && r.IsCall() {
					if len(queued) == 0 {
						t.Fatalf("server sent %s, but the replies section is exhausted", r.Method)
					}
					if err := conn.Write(ctx, &jsonrpc.Response{ID: r.ID, Result: queued[0]}); err != nil {
						t.Fatal(err)
					}
					queued = queued[1:]
					continue
				}
				if match(m) {
					return
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}

	for _, line := range splitMessages(t, client) {
		if d, ok := strings.CutPrefix(line, "#!"); ok {
			f := strings.Fields(d)
			switch f[0] {
			case "register":
				env.register(t, f[1])
			case "unregister":
				env.reg.Remove(f[1], "")
			case "append":
				if _, err := env.store.Append(ctx, f[1], contextstore.Entry{Role: "user", Content: json.RawMessage(fmt.Sprintf("%q", strings.Join(f[2:], " ")))}); err != nil {
					t.Fatal(err)
				}
			case "expect":
				await(f[1], func(m jsonrpc.Message) bool {
					r, ok := m.(*jsonrpc.Request)
					return ok && r.Method == f[1]
				})
			default:
				t.Fatalf("unknown directive %q", line)
			}
			continue
		}
		m, err := jsonrpc.DecodeMessage([]byte(line))
		if err != nil {
			t.Fatalf("bad client message %s: %v", line, err)
		}
		if err := conn.Write(ctx, m); err != nil {
			t.Fatal(err)
		}
		if r, ok := m.(*jsonrpc.Request); ok && r.IsCall() {
			await(fmt.Sprint(r.ID.Raw()), func(got jsonrpc.Message) bool {
				resp, ok := got.(*jsonrpc.Response)
				return ok && resp.ID == r.ID
			})
		}
	}

	if *update {
		for i, f := range ar.Files {
			if f.Name == "server" {
				ar.Files[i].Data = got.Bytes()
			}
		}
		if want == nil {
			ar.Files = append(ar.Files, txtar.File{Name: "server", Data: got.Bytes()})
		}
		if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if diff := cmp.Diff(string(want), got.String()); diff != "" {
		t.Errorf("server messages differ from %s (-want +got); run go test ./server -run TestGolden -update if intended:\n%s", file, diff)
	}
}

// splitMessages returns the client section's messages (a JSON value may
// span lines) and directives.
func splitMessages(t *testing.T, data []byte) []string {
	var out []string
	rest := data
	for {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) == 0 {
			return out
		}
		if bytes.HasPrefix(rest, []byte("#!")) {
			line, tail, _ := bytes.Cut(rest, []byte("\n"))
			out = append(out, string(bytes.TrimSpace(line)))
			rest = tail
			continue
		}
		d := json.NewDecoder(bytes.NewReader(rest))
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			t.Fatalf("client section: %v near %.40q", err, rest)
		}
		var c bytes.Buffer
		_ = json.Compact(&c, raw)
		out = append(out, c.String())
		rest = rest[d.InputOffset():]
	}
}

var (
	reHexID    = regexp.MustCompile(`\b[0-9a-f]{32}\b`)
	reTime     = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	reDuration = regexp.MustCompile(`(\\?"duration_ms\\?":)[0-9.e-]+`)
	reExpires  = regexp.MustCompile(`(\\?"(created|updated|expires|time)\\?":\\?")<time>`)
)

// normalize makes a server message stable and readable: indented JSON with
// random ids, times and durations replaced.
func normalize(data []byte) []byte {
	data = reHexID.ReplaceAll(data, []byte(`<id>`))
	data = reTime.ReplaceAll(data, []byte(`<time>`))
	data = reDuration.ReplaceAll(data, []byte(`${1}0`))
	data = reExpires.ReplaceAll(data, []byte(`${1}<time>`))
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return data
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
	return bytes.TrimSuffix(out.Bytes(), []byte("\n"))
}
