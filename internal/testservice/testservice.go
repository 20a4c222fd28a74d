// Package testservice finds the Redis and PostgreSQL servers that tests run
// against. When one is not reachable, a test skips with a message that says
// how to start it; under CI=true it fails instead, so that CI never passes
// by skipping.
//
// The addresses default to the servers these machines run (Redis on
// 127.0.0.1:6379, PostgreSQL on 127.0.0.1:5432 with trust auth and a
// database "test"); MCPTOWER_TEST_REDIS and MCPTOWER_TEST_POSTGRES override
// them with a store URL.
//
// It lives under the module's internal/ so that both the stores' tests and
// the end-to-end tests in cmd/mcptower can use it. It speaks just enough of
// each protocol to tell a live server from an open port, so that it needs
// neither driver.
package testservice

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Service is a server that tests need.
type Service struct {
	Name       string // "redis"
	Env        string // the variable that overrides DefaultURL
	DefaultURL string
	// DefaultPort is used when the URL names none.
	DefaultPort string
	// Start says how to start the server on these machines.
	Start string
	// probe checks that the server at addr ("host:port") answers.
	probe func(ctx context.Context, c net.Conn) error
}

// The services.
var (
	Redis = &Service{
		Name:        "redis",
		Env:         "MCPTOWER_TEST_REDIS",
		DefaultURL:  "redis://127.0.0.1:6379/0",
		DefaultPort: "6379",
		Start:       `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`,
		probe:       probeRedis,
	}
	Postgres = &Service{
		Name:        "postgres",
		Env:         "MCPTOWER_TEST_POSTGRES",
		DefaultURL:  "postgres://postgres@127.0.0.1:5432/test",
		DefaultPort: "5432",
		Start:       `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`,
		probe:       probePostgres,
	}
)

// URL returns the base URL of s's server, or skips t (fails it under
// CI=true) if the server does not answer. The result is checked once per
// process.
func (s *Service) URL(t testing.TB) string {
	t.Helper()
	raw := s.rawURL()
	if err := s.check(raw); err != nil {
		msg := fmt.Sprintf("%s not reachable at %s: %v", s.Name, hostPort(raw, s.DefaultPort), err)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: a missing service fails the test)", msg)
		}
		t.Skipf("%s; start it with `%s` (or set %s to a %s URL), or set CI=true to fail", msg, s.Start, s.Env, s.Name)
	}
	return raw
}

// Addr returns "host:port" of s's server, or skips or fails t like URL.
func (s *Service) Addr(t testing.TB) string {
	t.Helper()
	return hostPort(s.URL(t), s.DefaultPort)
}

func (s *Service) rawURL() string {
	if v := os.Getenv(s.Env); v != "" {
		return v
	}
	return s.DefaultURL
}

var (
	checkMu sync.Mutex
	checked = map[string]error{}
)

func (s *Service) check(raw string) error {
	checkMu.Lock()
	defer checkMu.Unlock()
	if err, ok := checked[raw]; ok {
		return err
	}
	err := s.dialProbe(hostPort(raw, s.DefaultPort))
	checked[raw] = err
	return err
}

func (s *Service) dialProbe(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	return s.probe(ctx, c)
}

// hostPort returns the "host:port" a store URL names.
func hostPort(raw, defaultPort string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), defaultPort)
	}
	return u.Host
}

// probeRedis sends PING; any RESP reply (+PONG, or -NOAUTH from a server
// that wants a password) means a Redis is there.
func probeRedis(_ context.Context, c net.Conn) error {
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no answer to PING: %w", err)
	}
	if !strings.HasPrefix(line, "+") && !strings.HasPrefix(line, "-") {
		return fmt.Errorf("answer to PING %q is not Redis's", strings.TrimSpace(line))
	}
	return nil
}

// probePostgres sends an SSLRequest, which every PostgreSQL server answers
// with one byte, 'S' or 'N', before any authentication.
func probePostgres(_ context.Context, c net.Conn) error {
	var req [8]byte
	binary.BigEndian.PutUint32(req[0:4], 8)
	binary.BigEndian.PutUint32(req[4:8], 80877103)
	if _, err := c.Write(req[:]); err != nil {
		return err
	}
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		return fmt.Errorf("no answer to an SSLRequest: %w", err)
	}
	if b[0] != 'S' && b[0] != 'N' {
		return fmt.Errorf("answer to an SSLRequest %q is not PostgreSQL's", b[0])
	}
	return nil
}
