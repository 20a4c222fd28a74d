package llm_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every request, stream and retry ends with its call: a cancelled or broken
// call must leave no goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
