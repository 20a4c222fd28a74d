package observe

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"mcptower/contextstore"
	"mcptower/internal/errs"
)

// Store wraps a context store with a span, a latency observation and an
// error count per operation.
func Store(s contextstore.Store, m *Metrics) contextstore.Store {
	return &store{Store: s, m: m}
}

type store struct {
	contextstore.Store
	m *Metrics
}

func (s *store) op(ctx context.Context, name string) (context.Context, func(error)) {
	start := time.Now()
	ctx, span := StartSpan(ctx, "store "+name, attribute.String("mcptower.store.op", name))
	return ctx, func(err error) {
		if s.m != nil {
			s.m.StoreDuration.WithLabelValues(name).Observe(time.Since(start).Seconds())
			if err != nil {
				s.m.StoreErrors.WithLabelValues(name, errs.CodeOf(err).String()).Inc()
			}
		}
		EndSpan(span, err)
	}
}

func (s *store) Append(ctx context.Context, session string, e contextstore.Entry) (contextstore.Entry, error) {
	ctx, end := s.op(ctx, "append")
	out, err := s.Store.Append(ctx, session, e)
	end(err)
	return out, err
}

func (s *store) History(ctx context.Context, session string, q contextstore.HistoryQuery) ([]contextstore.Entry, error) {
	ctx, end := s.op(ctx, "history")
	out, err := s.Store.History(ctx, session, q)
	end(err)
	return out, err
}

func (s *store) Sessions(ctx context.Context, q contextstore.SessionQuery) ([]contextstore.SessionInfo, error) {
	ctx, end := s.op(ctx, "sessions")
	out, err := s.Store.Sessions(ctx, q)
	end(err)
	return out, err
}

func (s *store) Delete(ctx context.Context, session string) error {
	ctx, end := s.op(ctx, "delete")
	err := s.Store.Delete(ctx, session)
	end(err)
	return err
}

func (s *store) Ping(ctx context.Context) error {
	ctx, end := s.op(ctx, "ping")
	err := s.Store.Ping(ctx)
	end(err)
	return err
}
