package llm

import (
	"context"
	"time"
)

// SetSleep replaces how a retrying agent waits, so tests need not.
func SetSleep(a *Agent, sleep func(ctx context.Context, d time.Duration) error) { a.sleep = sleep }
