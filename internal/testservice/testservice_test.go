package testservice

import (
	"net"
	"strings"
	"testing"
)

func TestMissingServiceSkips(t *testing.T) {
	t.Setenv("CI", "")
	// A port nothing listens on: listen, note it, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := *Redis
	s.Env = "MCPTOWER_TEST_NOTHING"
	t.Setenv(s.Env, "redis://"+addr+"/0")
	var skipped bool
	t.Run("missing", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		s.URL(t)
		t.Error("URL returned for a server that is not there")
	})
	if !skipped {
		t.Error("test of a missing service was not skipped")
	}
}

func TestProbes(t *testing.T) {
	for _, s := range []*Service{Redis, Postgres} {
		t.Run(s.Name, func(t *testing.T) {
			u := s.URL(t) // skips if absent
			if !strings.HasPrefix(u, s.Name) {
				t.Errorf("URL = %q", u)
			}
			if a := s.Addr(t); !strings.Contains(a, ":") {
				t.Errorf("Addr = %q", a)
			}
		})
	}
}

func TestHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"redis://127.0.0.1:6379/0":          "127.0.0.1:6379",
		"redis://localhost/0":               "localhost:6379",
		"redis://u:p@[::1]:7000/1?prefix=x": "[::1]:7000",
	} {
		if got := hostPort(in, "6379"); got != want {
			t.Errorf("hostPort(%q) = %q, want %q", in, got, want)
		}
	}
}
