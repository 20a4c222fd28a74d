package config_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mcptower/internal/config"
)

func TestIsSecretKey(t *testing.T) {
	secret := []string{"api_key", "API_KEY", "OPENAI_API_KEY", "apiKey", "apikey", "X-Api-Key", "token", "access_token",
		"accessToken", "HTTPToken", "password", "db_password", "sslpassword", "passwd", "secret", "client_secret",
		"secret_ref", "Authorization", "proxy-authorization", "private_key", "key", "credentials", "cookie"}
	public := []string{"", "max_tokens", "token_url", "tokens", "keyword", "monkey", "model", "url", "tool",
		"key_id_list", "author", "description"}
	for _, k := range secret {
		if !config.IsSecretKey(k) {
			t.Errorf("IsSecretKey(%q) = false, want true", k)
		}
	}
	for _, k := range public {
		if config.IsSecretKey(k) {
			t.Errorf("IsSecretKey(%q) = true, want false", k)
		}
	}
}

func TestRedacted(t *testing.T) {
	src := `
store:
  url: postgres://mcp:hunter2@db.internal:5432/ctx?sslmode=verify-full&sslpassword=s3cret
agents:
  - name: writer
    kind: llm
    metadata: {owner: team-a, signing_key: abc123}
    model: gpt-5
    api_key: ${OPENAI_API_KEY}
    max_tokens: 1000
    token_url: https://auth.example/token
    empty_token: ""
    headers:
      Authorization: Bearer xyz789
      X-Trace: on
    env: {GITHUB_TOKEN: ghp_abc, PATH: /bin}
    servers:
      - {name: s, password: pw1}
`
	c, err := config.Parse("c.yaml", []byte(src), env(map[string]string{"OPENAI_API_KEY": "sk-live-123"}))
	if err != nil {
		t.Fatal(err)
	}
	before, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r := c.Redacted()

	wantURL := "postgres://mcp:xxxxx@db.internal:5432/ctx?sslmode=verify-full&sslpassword=xxxxx"
	if r.Store.URL != wantURL {
		t.Errorf("store URL = %q, want %q", r.Store.URL, wantURL)
	}
	wantOpts := `{"model":"gpt-5","api_key":"[redacted]","max_tokens":1000,"token_url":"https://auth.example/token","empty_token":"",` +
		`"headers":{"Authorization":"[redacted]","X-Trace":"on"},"env":{"GITHUB_TOKEN":"[redacted]","PATH":"/bin"},` +
		`"servers":[{"name":"s","password":"[redacted]"}]}`
	if diff := cmp.Diff(wantOpts, string(r.Agents[0].Options)); diff != "" {
		t.Errorf("options mismatch (-want +got):\n%s", diff)
	}
	wantMeta := map[string]string{"owner": "team-a", "signing_key": "[redacted]"}
	if diff := cmp.Diff(wantMeta, r.Agents[0].Metadata); diff != "" {
		t.Errorf("metadata mismatch (-want +got):\n%s", diff)
	}

	out, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"hunter2", "s3cret", "sk-live-123", "xyz789", "ghp_abc", "pw1", "abc123"} {
		if strings.Contains(string(out), s) {
			t.Errorf("redacted config contains %q:\n%s", s, out)
		}
	}
	// The original is untouched.
	after, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(before), string(after)); diff != "" {
		t.Errorf("Redacted changed the original (-before +after):\n%s", diff)
	}
}

func TestRedactedURLs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"memory:", "memory:"},
		{"sqlite:///var/lib/x.db", "sqlite:///var/lib/x.db"},
		{"redis://:pw@localhost:6379/0", "redis://:xxxxx@localhost:6379/0"},
		{"redis://localhost:6379/0?ttl=1h", "redis://localhost:6379/0?ttl=1h"},
		{"postgres://h/db?password=pw", "postgres://h/db?password=xxxxx"},
	}
	for _, tt := range tests {
		c := config.Default()
		c.Store.URL = tt.in
		if got := c.Redacted().Store.URL; got != tt.want {
			t.Errorf("Redacted(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
