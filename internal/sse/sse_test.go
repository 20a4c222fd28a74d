package sse

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

type event struct{ Name, ID, Data string }

// events reads every event of stream, a byte at a time and with a small
// buffer so that long lines take the reassembly path.
func events(t testing.TB, stream string, bufSize, limit int) ([]event, error) {
	t.Helper()
	s := NewReader(bufSize, limit)
	s.Reset(iotest.OneByteReader(strings.NewReader(stream)))
	var got []event
	for {
		ev, err := s.Next()
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		e := event{Name: string(ev.Name), Data: string(ev.Data)}
		if ev.ID != nil {
			e.ID = "#" + string(ev.ID)
		}
		got = append(got, e)
	}
}

func TestReader(t *testing.T) {
	long := strings.Repeat("x", 100)
	tests := []struct {
		name   string
		stream string
		want   []event
	}{
		{"empty", "", nil},
		{"one event", "data: {}\n\n", []event{{Data: "{}"}}},
		{"event name and id", "event: message\nid: 3\ndata: a\n\n", []event{{Name: "message", ID: "#3", Data: "a"}}},
		{"empty id is an id", "id:\ndata: a\n\n", []event{{ID: "#", Data: "a"}}},
		{"id with NUL ignored", "id: a\x00b\ndata: a\n\n", []event{{Data: "a"}}},
		{"priming event", "event: prime\nid: s_0\ndata: \n\n", []event{{Name: "prime", ID: "#s_0"}}},
		{"CRLF", "data: a\r\n\r\ndata: b\r\n\r\n", []event{{Data: "a"}, {Data: "b"}}},
		{"no space after colon", "data:a\n\n", []event{{Data: "a"}}},
		{"only one space stripped", "data:  a\n\n", []event{{Data: " a"}}},
		{"multi-line data", "data: {\"a\":\ndata: 1}\n\n", []event{{Data: "{\"a\":\n1}"}}},
		{"comments skipped", ": hi\n\ndata: x\n\n", []event{{Data: "x"}}},
		{"field without colon", "data\n\n", []event{{Data: ""}}},
		{"fields do not leak into the next event", "event: a\nid: 1\ndata: x\n\ndata: y\n\n", []event{{Name: "a", ID: "#1", Data: "x"}, {Data: "y"}}},
		{"incomplete last event dropped", "data: a\n\ndata: b\n", []event{{Data: "a"}}},
		{"incomplete last line dropped", "data: a\n\ndata: b", []event{{Data: "a"}}},
		{"line longer than the buffer", "data: " + long + "\n\n", []event{{Data: long}}},
		{"other fields ignored", "retry: 10\nfoo: bar\ndata: a\n\n", []event{{Data: "a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := events(t, tt.stream, 16, 0)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReaderLimit(t *testing.T) {
	for _, stream := range []string{
		"data: " + strings.Repeat("x", 200) + "\n\n",                    // one long line
		strings.Repeat("data: "+strings.Repeat("x", 30)+"\n", 5) + "\n", // many lines
	} {
		got, err := events(t, "data: ok\n\n"+stream, 16, 100)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("events over the limit: error %v, want ErrTooLarge", err)
		}
		if len(got) != 1 || got[0].Data != "ok" {
			t.Errorf("events before the oversize one = %v, want the first", got)
		}
	}
}

func TestDiscard(t *testing.T) {
	s := NewReader(16, 0)
	s.Reset(strings.NewReader("data: a\n\n0123456789"))
	if _, err := s.Next(); err != nil {
		t.Fatal(err)
	}
	if end, err := s.Discard(5); end || err != nil {
		t.Errorf("Discard(5) of 10 bytes = %v, %v; want false, nil", end, err)
	}
	if end, err := s.Discard(100); !end || err != nil {
		t.Errorf("Discard(100) of the last 5 bytes = %v, %v; want true, nil", end, err)
	}
}

func TestReaderAllocations(t *testing.T) {
	stream := "event: prime\nid: a_0\ndata: \n\nevent: message\nid: a_1\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n"
	rd := strings.NewReader(stream)
	s := NewReader(4096, 1<<20)
	allocs := testing.AllocsPerRun(100, func() {
		rd.Reset(stream)
		s.Reset(rd)
		for {
			if _, err := s.Next(); err != nil {
				if err != io.EOF {
					t.Fatal(err)
				}
				return
			}
		}
	})
	if allocs > 0 {
		t.Errorf("reading a stream allocates %v times, want 0", allocs)
	}
}

func FuzzReader(f *testing.F) {
	f.Add("data: {}\n\n")
	f.Add(": c\r\nevent: message\r\nid: 1\r\ndata: a\r\ndata: b\r\n\r\n")
	f.Add("data:" + strings.Repeat("y", 40) + "\ndata\n\n\n")
	f.Fuzz(func(t *testing.T, stream string) {
		got, err := events(t, stream, 16, 0)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		// Each event's fields are assembled from whole lines of the stream.
		for _, ev := range got {
			for line := range strings.SplitSeq(ev.Data, "\n") {
				if !strings.Contains(stream, line) {
					t.Errorf("event data line %q is not in the stream", line)
				}
			}
			if !strings.Contains(stream, ev.Name) || !strings.Contains(stream, strings.TrimPrefix(ev.ID, "#")) {
				t.Errorf("event %+v has a name or id that is not in the stream", ev)
			}
		}
	})
}

func TestRetained(t *testing.T) {
	s := NewReader(64, 0)
	small := s.Retained()
	s.Reset(strings.NewReader("data: " + strings.Repeat("x", 10000) + "\n\n"))
	if _, err := s.Next(); err != nil {
		t.Fatal(err)
	}
	if got := s.Retained(); got < small+10000 {
		t.Errorf("Retained after a 10000-byte event = %d, want at least %d", got, small+10000)
	}
}
