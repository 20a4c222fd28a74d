package config_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"mcptower/internal/config"
)

func TestWatch(t *testing.T) {
	defer goleak.VerifyNone(t)
	path := filepath.Join(t.TempDir(), "mcptower.yaml")
	// write replaces the file atomically, as careful editors do, so that
	// a poll never sees it half-written.
	write := func(s string) {
		t.Helper()
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write("server: {http: ':1'}\n")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan struct{}, 10)
	config.Watch(ctx, path, 5*time.Millisecond, func() { changes <- struct{}{} })

	expect := func(what string) {
		t.Helper()
		select {
		case <-changes:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no change reported", what)
		}
	}
	expectNone := func(what string) {
		t.Helper()
		select {
		case <-changes:
			t.Fatalf("%s: change reported", what)
		case <-time.After(100 * time.Millisecond):
		}
	}

	expectNone("no edit")
	// Same size, and most likely the same modification time tick: only the
	// content hash tells.
	write("server: {http: ':2'}\n")
	expect("same-size edit")
	expectNone("after the edit")

	now := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, now, now); err != nil {
		t.Fatal(err)
	}
	expectNone("touch without a change")

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	expect("removal")
	write("agents: []\n")
	expect("creation")

	cancel()
	time.Sleep(20 * time.Millisecond) // let a poll in flight finish
	for len(changes) > 0 {
		<-changes
	}
	write("agents: [] # edited after cancel\n")
	expectNone("after cancel")
}

func TestWatchDefaultInterval(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	config.Watch(ctx, filepath.Join(t.TempDir(), "missing.yaml"), 0, func() {})
	cancel()
}
