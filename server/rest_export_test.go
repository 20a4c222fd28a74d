package server

import (
	"net/http"
	"slices"
	"time"
)

// ServedMux returns a mux holding every route Handler mounts, and their
// patterns, so that tests can compare the routes with the OpenAPI document.
// "GET /metrics" is mounted by withMetrics when the server has metrics.
func ServedMux(s *Server) (*http.ServeMux, []string) {
	routes := s.allRoutes(nil)
	mux := http.NewServeMux()
	withMetrics(s.opts.Metrics, routes, mux)
	var patterns []string
	for p := range routes {
		patterns = append(patterns, p)
	}
	if s.opts.Metrics != nil {
		patterns = append(patterns, "GET /metrics")
	}
	slices.Sort(patterns)
	return mux, patterns
}

// RESTFallbacks are the patterns that answer unknown REST routes.
var RESTFallbacks = restFallbacks

// SetFlushDelay sets how long a held-back flush may wait (coalesce.go) and
// returns the function that restores it.
func SetFlushDelay(d time.Duration) (restore func()) {
	old := flushDelay.Swap(int64(d))
	return func() { flushDelay.Store(old) }
}
