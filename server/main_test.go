package server_test

import (
	"os"
	"testing"
)

// TestMain keeps tests away from the developer's real data directory (the
// default store and the runtime registrations file live there).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mcptower-server-test")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_DATA_HOME", dir)
	os.Setenv("HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
