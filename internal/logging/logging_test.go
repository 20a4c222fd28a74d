package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWithAttrsReplacesKeys(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(contextHandler{slog.NewJSONHandler(&buf, nil)})
	ctx := WithAttrs(context.Background(), slog.String("request_id", "session-opener"), slog.String("tenant", "a"))
	ctx = WithAttrs(ctx, slog.String("request_id", "this-request"))
	logger.InfoContext(ctx, "call")

	// Decode key by key: a duplicate key would be lost by a map.
	dec := json.NewDecoder(&buf)
	var keys, ids []string
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		k, _ := dec.Token()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		if k == "request_id" {
			ids = append(ids, v.(string))
		}
	}
	if diff := cmp.Diff([]string{"this-request"}, ids); diff != "" {
		t.Errorf("request_id values in %v (-want +got):\n%s", keys, diff)
	}
	if !slices.Contains(keys, "tenant") {
		t.Errorf("keys %v: the attribute not set again was lost", keys)
	}
}
