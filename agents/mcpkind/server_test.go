package mcpkind

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"
)

// The test binary doubles as an upstream MCP server: run with
// MCPKIND_TEST_SERVER=stdio, it serves testServer over stdin/stdout.
func TestMain(m *testing.M) {
	if os.Getenv("MCPKIND_TEST_SERVER") == "stdio" {
		fmt.Fprintln(os.Stderr, "test server: starting")
		err := testServer().Run(context.Background(), &mcp.StdioTransport{})
		fmt.Fprintln(os.Stderr, "test server: stopped:", err)
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// slowCancelled counts the calls of the tool slow that saw their context
// end, in this process (the HTTP upstreams of the tests).
var slowCancelled atomic.Int64

type textIn struct {
	Text string `json:"text"`
}

type textOut struct {
	Text string `json:"text"`
}

type slowIn struct {
	Steps  int `json:"steps"`
	StepMS int `json:"step_ms"`
}

type nameIn struct {
	Name string `json:"name"`
}

type exitIn struct {
	AfterMS int `json:"after_ms"`
	Code    int `json:"code"`
}

// testServer is the upstream of the tests: every tool exercises one thing
// the relay must carry.
func testServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "mcpkind-test", Version: "1"}, &mcp.ServerOptions{
		Capabilities: &mcp.ServerCapabilities{Logging: &mcp.LoggingCapabilities{}, Tools: &mcp.ToolCapabilities{ListChanged: true}},
	})
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Echoes text.", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, Title: "Echo"}},
		func(_ context.Context, _ *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, textOut, error) {
			return nil, textOut{Text: in.Text}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "slow", Description: "Reports progress at every step."},
		func(ctx context.Context, req *mcp.CallToolRequest, in slowIn) (*mcp.CallToolResult, any, error) {
			for i := 1; i <= in.Steps; i++ {
				select {
				case <-time.After(time.Duration(in.StepMS) * time.Millisecond):
				case <-ctx.Done():
					slowCancelled.Add(1)
					fmt.Fprintln(os.Stderr, "slow: cancelled at step", i)
					return nil, nil, ctx.Err()
				}
				if tok := req.Params.GetProgressToken(); tok != nil {
					_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i), Total: float64(in.Steps), Message: fmt.Sprintf("step %d", i)})
				}
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "exit", Description: "Exits the process mid-call."},
		func(_ context.Context, _ *mcp.CallToolRequest, in exitIn) (*mcp.CallToolResult, any, error) {
			time.Sleep(time.Duration(in.AfterMS) * time.Millisecond)
			fmt.Fprintln(os.Stderr, "exit: goodbye")
			os.Exit(in.Code)
			return nil, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "sample", Description: "Asks the client's model."},
		func(ctx context.Context, req *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, textOut, error) {
			res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
				MaxTokens: 50, SystemPrompt: "be brief",
				Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: in.Text}}},
			})
			if err != nil {
				return nil, textOut{}, fmt.Errorf("sampling failed: %w", err)
			}
			text := ""
			if tc, ok := res.Content.(*mcp.TextContent); ok {
				text = tc.Text
			}
			return nil, textOut{Text: res.Model + ": " + text}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "elicit", Description: "Asks the user."},
		func(ctx context.Context, req *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, textOut, error) {
			res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: in.Text, RequestedSchema: map[string]any{
				"type": "object", "properties": map[string]any{"color": map[string]any{"type": "string"}},
			}})
			if err != nil {
				return nil, textOut{}, fmt.Errorf("elicitation failed: %w", err)
			}
			return nil, textOut{Text: fmt.Sprintf("%s %v", res.Action, res.Content["color"])}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "log", Description: "Logs a message, then answers."},
		func(ctx context.Context, req *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
			if err := req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "warning", Logger: "test", Data: in.Text}); err != nil {
				return nil, nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "logged"}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "add_tool", Description: "Adds a tool (list_changed follows)."},
		func(_ context.Context, _ *mcp.CallToolRequest, in nameIn) (*mcp.CallToolResult, any, error) {
			mcp.AddTool(s, &mcp.Tool{Name: in.Name, Description: "Added at run time."},
				func(context.Context, *mcp.CallToolRequest, textIn) (*mcp.CallToolResult, textOut, error) {
					return nil, textOut{Text: in.Name}, nil
				})
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "added"}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "remove_tool", Description: "Removes a tool (list_changed follows)."},
		func(_ context.Context, _ *mcp.CallToolRequest, in nameIn) (*mcp.CallToolResult, any, error) {
			s.RemoveTools(in.Name)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "removed"}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "fail", Description: "Fails as a tool."},
		func(context.Context, *mcp.CallToolRequest, textIn) (*mcp.CallToolResult, any, error) {
			return nil, nil, errors.New("it failed, as asked")
		})
	return s
}
