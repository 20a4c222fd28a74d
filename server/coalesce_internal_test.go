package server

import "testing"

func TestHoldFlush(t *testing.T) {
	tests := []struct {
		event string
		hold  bool
	}{
		{"event: prime\nid: s_0\ndata: \n\n", true},
		{"event: message\nid: s_1\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[]}}\n\n", true},
		{"event: message\nid: s_1\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32602,\"message\":\"x\"}}\n\n", true},
		{"data: {\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":{}}\n\n", true},
		// A response whose result mentions "method" is still a response.
		{"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"\\\"method\\\"\"}]}}\n\n", true},
		// Notifications and requests go out at once.
		{"event: message\nid: s_2\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n", false},
		{"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"sampling/createMessage\",\"params\":{\"result\":1}}\n\n", false},
		{"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"data\":{\"error\":true}}}\n\n", false},
		// Not an event: a JSON body, comments.
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}", false},
		{": keep-alive\n\n", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := holdFlush([]byte(tt.event)); got != tt.hold {
			t.Errorf("holdFlush(%q) = %v, want %v", tt.event, got, tt.hold)
		}
	}
}
