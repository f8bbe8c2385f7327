package console

import "time"

// NewSessionStoreForTest exposes the session store to the external tests.
func NewSessionStoreForTest(now func() time.Time, max int) interface {
	Find(string) ([]byte, bool, error)
	Commit(string, []byte, time.Time) error
	Delete(string) error
} {
	return newSessionStore(now, max)
}
