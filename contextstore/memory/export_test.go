package memory

// Len returns how many sessions s holds, expired or not, for tests of the
// janitor.
func Len(s *Store) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}
