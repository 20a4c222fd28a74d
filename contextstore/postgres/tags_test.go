package postgres

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeTags(t *testing.T) {
	for _, m := range []map[string]string{
		{},
		{"k": "v"},
		{"a": "1", "b": "", "": "empty key", "sp ace": "x:y,z"},
		{"html": "<a&b>", "quote": `say "hi"`, "nl": "a\nb", "uni": "é ✓ 🚀"},
	} {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeTags(b)
		if err != nil {
			t.Fatalf("decodeTags(%s): %v", b, err)
		}
		if diff := cmp.Diff(m, got); diff != "" {
			t.Errorf("decodeTags(%s) (-want +got):\n%s", b, diff)
		}
	}
	for _, bad := range []string{`{"a":1}`, `{"a"}`, `{"a":"b",}`, `[]`, `{"a":"b"`, `{"a":"b"x}`} {
		if _, err := decodeTags([]byte(bad)); err == nil {
			t.Errorf("decodeTags(%s) succeeded", bad)
		}
	}
}

func FuzzDecodeTags(f *testing.F) {
	f.Add([]byte(`{"a":"1","b":"2"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"a":"\u003c"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeSimpleTags(b)
		if !ok {
			return
		}
		// Where the fast path accepts, encoding/json agrees.
		var slow map[string]string
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", b, err)
		}
		if diff := cmp.Diff(slow, fast); diff != "" {
			t.Fatalf("%q (-encoding/json +fast):\n%s", b, diff)
		}
	})
}
