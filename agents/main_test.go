package agents_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The engine starts no goroutines of its own: a timed-out or cancelled call
// must leave none behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
