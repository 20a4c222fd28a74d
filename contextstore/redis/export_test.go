package redis

import (
	"context"

	"mcptower/contextstore"
)

// AppendOp appends with a given op id, to test that a retried append
// appends once.
func AppendOp(s *Store, ctx context.Context, id string, e contextstore.Entry, op string) (contextstore.Entry, error) {
	return s.append(ctx, id, e, op)
}

// Sweep runs one sweep now.
func Sweep(s *Store, ctx context.Context) error { return s.sweep(ctx) }
