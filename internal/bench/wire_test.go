package bench

import (
	"strings"
	"testing"
	"time"
)

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
		w.sse.Reset(rd)
		w.idBuf = append(w.idBuf[:0], '7')
		for {
			ev, err := w.sse.Next()
			if err != nil {
				t.Fatal(err)
			}
			if err := w.msg.decode(&w.dec, ev.Data); err != nil {
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
