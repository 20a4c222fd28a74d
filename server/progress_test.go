package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"mcptower/agents"
)

// TestSupportsProgress checks that an agent can tell whether the caller
// asked for progress notifications.
func TestSupportsProgress(t *testing.T) {
	env, ts := newHTTPEnv(t, nil)
	probe, err := agents.Func(agents.Spec{Name: "probe", Description: "Says whether progress was asked for."},
		func(_ context.Context, call *agents.Call) (*agents.Result, error) {
			return &agents.Result{Content: []agents.Content{agents.Text(fmt.Sprint(call.Client.Supports("progress")))}}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.reg.Add(probe); err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, url: ts.URL + "/mcp"}
	c.initialize()
	for _, tt := range []struct{ meta, want string }{
		{``, "false"},
		{`,"_meta":{"progressToken":"p1"}`, "true"},
		{`,"_meta":{"progressToken":7}`, "true"},
		{`,"_meta":{"other":1}`, "false"},
	} {
		r := c.do("POST", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"probe","arguments":{}`+tt.meta+`}}`, nil)
		if !strings.Contains(string(r.body), `"text":"`+tt.want+`"`) {
			t.Errorf("meta %q: answer %s, want Supports(progress) = %s", tt.meta, r.body, tt.want)
		}
	}
}
