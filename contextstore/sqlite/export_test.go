package sqlite

import "fmt"

// SetUserVersion sets the database's schema version, to test refusing a
// newer schema.
func SetUserVersion(s *Store, v int) error {
	_, err := s.db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, v))
	return err
}

// Rows returns how many sessions and entries the database holds, expired or
// not, to test the sweeper.
func Rows(s *Store) (int, error) {
	var n int
	err := s.db.QueryRow(`SELECT (SELECT count(*) FROM sessions) + (SELECT count(*) FROM entries)`).Scan(&n)
	return n, err
}
