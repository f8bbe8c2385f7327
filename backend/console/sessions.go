package console

import (
	"sync"
	"time"
)

// sessionStore is the console's scs.Store: in memory, bounded, and without
// a goroutine (scs's memstore runs a cleanup goroutine whose stop races
// with its start). Expired sessions are swept when a new one would
// exceed the bound; beyond it, the session closest to expiry goes.
// Sessions exist only for logged-in operators, so the bound is generous.
type sessionStore struct {
	mu       sync.Mutex
	now      func() time.Time
	max      int
	sessions map[string]session
}

type session struct {
	data   []byte
	expiry time.Time
}

// maxSessions bounds the sessions kept.
const maxSessions = 10000

func newSessionStore(now func() time.Time, max int) *sessionStore {
	return &sessionStore{now: now, max: max, sessions: map[string]session{}}
}

// Find implements scs.Store.
func (s *sessionStore) Find(token string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.sessions[token]
	if !ok {
		return nil, false, nil
	}
	if !s.now().Before(se.expiry) {
		delete(s.sessions, token)
		return nil, false, nil
	}
	return se.data, true, nil
}

// Commit implements scs.Store.
func (s *sessionStore) Commit(token string, b []byte, expiry time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[token]; !ok && len(s.sessions) >= s.max {
		now := s.now()
		oldest, first := "", time.Time{}
		for k, se := range s.sessions {
			if !now.Before(se.expiry) {
				delete(s.sessions, k)
			} else if oldest == "" || se.expiry.Before(first) {
				oldest, first = k, se.expiry
			}
		}
		if len(s.sessions) >= s.max {
			delete(s.sessions, oldest)
		}
	}
	s.sessions[token] = session{data: b, expiry: expiry}
	return nil
}

// Delete implements scs.Store.
func (s *sessionStore) Delete(token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, token)
	return nil
}
