package bench

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// events reads every event's data from stream, using a small buffer so that
// long lines take the reassembly path.
func events(t testing.TB, stream string, bufSize int) ([]string, error) {
	t.Helper()
	s := sseReader{br: bufio.NewReaderSize(nil, bufSize)}
	s.reset(iotest.OneByteReader(strings.NewReader(stream)))
	var got []string
	for {
		data, err := s.next()
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, string(data))
	}
}

func TestSSEReader(t *testing.T) {
	long := strings.Repeat("x", 100)
	tests := []struct {
		name   string
		stream string
		want   []string
	}{
		{"empty", "", nil},
		{"one event", "data: {}\n\n", []string{"{}"}},
		{"event name and id ignored", "event: message\nid: 3\ndata: a\n\n", []string{"a"}},
		{"CRLF", "data: a\r\n\r\ndata: b\r\n\r\n", []string{"a", "b"}},
		{"no space after colon", "data:a\n\n", []string{"a"}},
		{"only one space stripped", "data:  a\n\n", []string{" a"}},
		{"multi-line data", "data: {\"a\":\ndata: 1}\n\n", []string{"{\"a\":\n1}"}},
		{"comments and events without data skipped", ": hi\n\nevent: prime\nid: 1\n\ndata: x\n\n", []string{"x"}},
		{"field without colon", "data\n\n", []string{""}},
		{"incomplete last event dropped", "data: a\n\ndata: b\n", []string{"a"}},
		{"incomplete last line dropped", "data: a\n\ndata: b", []string{"a"}},
		{"line longer than the buffer", "data: " + long + "\n\n", []string{long}},
		{"other fields ignored", "retry: 10\nfoo: bar\ndata: a\n\n", []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := events(t, tt.stream, 16)
			if err != nil {
				t.Fatalf("next: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzSSEReader(f *testing.F) {
	f.Add("data: {}\n\n")
	f.Add(": c\r\nevent: message\r\ndata: a\r\ndata: b\r\n\r\n")
	f.Add("data:" + strings.Repeat("y", 40) + "\ndata\n\n\n")
	f.Fuzz(func(t *testing.T, stream string) {
		got, err := events(t, stream, 16)
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		// Each event's data is assembled from whole lines of the stream.
		for _, data := range got {
			for line := range strings.SplitSeq(data, "\n") {
				if !strings.Contains(stream, line) {
					t.Errorf("event data line %q is not in the stream", line)
				}
			}
		}
	})
}

func TestValueDecoder(t *testing.T) {
	var d valueDecoder
	var m message
	tests := []struct {
		in      string
		wantID  string
		wantErr bool
	}{
		{in: `{"id":1,"result":{}}`, wantID: "1"},
		{in: "{\"id\":22}\n", wantID: "22"},
		{in: `{"id":3} {"id":4}`, wantErr: true},
		{in: `{"id":`, wantErr: true},
		{in: `{"id":5}`, wantID: "5"}, // the decoder recovers after errors
		{in: `{}`, wantID: ""},        // absent fields are cleared
	}
	for _, tt := range tests {
		err := m.decode(&d, []byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("decode(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && string(m.ID) != tt.wantID {
			t.Errorf("decode(%q) id = %s, want %s", tt.in, m.ID, tt.wantID)
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var d []time.Duration
		for _, n := range ns {
			d = append(d, time.Duration(n)*time.Millisecond)
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of four", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p50 of 100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p95 of 100", ms(hundred...), 95, 95 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 99, 99 * time.Millisecond},
		{"max", ms(hundred...), 100, 100 * time.Millisecond},
		{"p99 of 10", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("%s: percentile(p%v) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
}

// TestCallAllocations guards the client's share of allocations per call;
// net/http's transport accounts for most of them.
func TestCallAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("measures allocations")
	}
	r, err := newRunner(Options{URL: "http://127.0.0.1:1/", Tool: "echo", Requests: 1})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorker(r, 0)
	sse := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n" +
		"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}}\n\n"
	rd := strings.NewReader(sse)
	allocs := testing.AllocsPerRun(100, func() {
		rd.Reset(sse)
		w.sse.reset(rd)
		w.idBuf = append(w.idBuf[:0], '7')
		for {
			data, err := w.sse.next()
			if err != nil {
				t.Fatal(err)
			}
			if err := w.msg.decode(&w.dec, data); err != nil {
				t.Fatal(err)
			}
			if w.msg.isResponseTo(w.idBuf) {
				break
			}
		}
		if err := w.msg.check(); err != nil {
			t.Fatal(err)
		}
		w.tool = toolResult{}
		if err := w.dec.decode(w.msg.Result, &w.tool); err != nil || w.tool.IsError {
			t.Fatal(err, w.tool)
		}
	})
	if allocs > 0 {
		t.Errorf("parsing an SSE response allocates %v times, want 0", allocs)
	}
}
