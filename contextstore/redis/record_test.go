package redis

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mcptower/contextstore"
)

func TestRecordRoundTrip(t *testing.T) {
	now := time.UnixMicro(1764130000123456).UTC()
	for _, e := range []contextstore.Entry{
		{Role: contextstore.RoleUser, Content: json.RawMessage(`null`)},
		{Role: contextstore.RoleTool, Agent: "echo@1.0.0", Content: json.RawMessage(`{"a":"b\n c"}`),
			Tags: map[string]string{"k": "v", "": "", "with:colon": "12:34", "nl": "a\nb"}},
		{Role: "custom", Agent: "x y", Content: json.RawMessage(`"🚀"`)},
	} {
		rec := strconv.FormatInt(now.UnixMicro(), 10) + " " + string(encodeRecord(e))
		var got contextstore.Entry
		if err := decodeRecord(rec, &got); err != nil {
			t.Fatalf("decodeRecord(%q): %v", rec, err)
		}
		e.Time = now
		if diff := cmp.Diff(e, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

func TestDecodePayload(t *testing.T) {
	e := contextstore.Entry{Role: contextstore.RoleAgent, Content: json.RawMessage(`1`)}
	got, gen, err := decodePayload("s", "7 1764130000000001 1764130000000002 "+string(encodeRecord(e)))
	if err != nil || got.Seq != 7 || gen != 1764130000000001 || got.Session != "s" || string(got.Content) != "1" {
		t.Errorf("decodePayload = %+v, %d, %v", got, gen, err)
	}
	for _, bad := range []string{"", "7", "7 8", "x 8 9 0 0 0\n", "7 8 9 1 1 1\nab", "7 8 9 0 0 0\n3:ab", "7 8 9 0 0 0\n1:a"} {
		if _, _, err := decodePayload("s", bad); err == nil {
			t.Errorf("decodePayload(%q) succeeded", bad)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add("1764130000123456 4 0 4\nusernull")
	f.Add("1 4 3 2\ntoolabc{}1:k1:v")
	f.Add("1 0 0 0\n0:0:")
	f.Fuzz(func(t *testing.T, rec string) {
		var e contextstore.Entry
		if decodeRecord(rec, &e) != nil {
			return
		}
		// What decodes re-encodes to the same record.
		again := strconv.FormatInt(e.Time.UnixMicro(), 10) + " " + string(encodeRecord(e))
		var e2 contextstore.Entry
		if err := decodeRecord(again, &e2); err != nil {
			t.Fatalf("re-encoded record %q does not decode: %v", again, err)
		}
		if diff := cmp.Diff(e, e2); diff != "" {
			t.Fatalf("(-first +second):\n%s", diff)
		}
	})
}
