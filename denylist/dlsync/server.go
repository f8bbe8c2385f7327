package dlsync

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/faregate/faregate/denylist"
)

// Answer is what a gate at a given version should receive.
type Answer struct {
	Current  *denylist.List // the current version
	UpToDate bool           // the gate holds the current version
	Ahead    bool           // the gate holds a version newer than the current one
	Delta    []byte         // a signed delta to Current, or nil for …
	Snapshot *denylist.List // … the snapshot of Current (when neither flag is set)
}

// Publisher is what the server needs from the back office's registry
// (*denylistreg.Registry is one).
type Publisher interface {
	// Current returns the current version.
	Current() *denylist.List
	// Answer decides what a gate at version since gets.
	Answer(ctx context.Context, since uint64) (Answer, error)
}

// ServerOptions configure a Server.
type ServerOptions struct {
	// Key signs head statements (required): the deny-list key.
	Key ed25519.PrivateKey
	// NextKey, when set, is announced in every head statement as the key
	// the back office will sign with next (docs/denylist.md, "Key
	// rotation"): gates that verify the statement trust it from then on.
	NextKey ed25519.PublicKey
	// MaxAge is the Cache-Control max-age of every answer (default 10 s):
	// how long a CDN may serve an answer before asking again. It adds to
	// the time a change takes to reach the gates.
	MaxAge time.Duration
	// HeadInterval is how often the head statement is re-signed (default
	// 1 min); a new version gets a new statement at once.
	HeadInterval time.Duration
	// HeadTTL is how long a head statement vouches for its version
	// (default 15 min). A gate that has seen no fresh statement for that
	// long says so (docs/denylist.md).
	HeadTTL time.Duration
	Now     func() time.Time // nil: time.Now
}

// Server answers gates: GET ListPath?since=N and GET HeadPath. Mount it on
// both paths, e.g.
//
//	mux.Handle("GET "+dlsync.ListPath, srv)
//	mux.Handle("GET "+dlsync.HeadPath, srv)
//
// or serve it alone (it routes the two paths itself and answers 404
// elsewhere).
//
// GET ListPath?since=N answers
//
//	200  a signed delta from N to the current version, or the snapshot when
//	     N is 0, older than the retained changes, or the delta would be no
//	     smaller (the file's header says which)
//	204  N is the current version: nothing to apply
//	304  If-None-Match holds the answer's ETag
//	400  N is not a version number
//	409  N is newer than the current version (the back office was restored
//	     from an older backup?): the gate keeps its list
//
// Every answer to a given (N, current version) is the same bytes, so the
// ETag names the pair and a CDN may cache it for MaxAge: the files are
// signed, the cache need not be trusted. GET HeadPath answers 200 with the
// signed head statement (denylist.Head), re-signed every HeadInterval.
type Server struct {
	p   Publisher
	o   ServerOptions
	mu  sync.Mutex
	hd  []byte // signed head of …
	hdV uint64 // … this version,
	hdT time.Time
}

// NewServer returns the protocol's HTTP handler for p.
func NewServer(p Publisher, o ServerOptions) (*Server, error) {
	if len(o.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("dlsync: an Ed25519 signing key is required")
	}
	if o.NextKey != nil && len(o.NextKey) != ed25519.PublicKeySize {
		return nil, errors.New("dlsync: the next key must be an Ed25519 public key")
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 10 * time.Second
	}
	if o.HeadInterval <= 0 {
		o.HeadInterval = time.Minute
	}
	if o.HeadTTL <= 0 {
		o.HeadTTL = 15 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Server{p: p, o: o}, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch req.URL.Path {
	case ListPath:
		s.serveList(w, req)
	case HeadPath:
		s.serveHead(w, req)
	default:
		http.NotFound(w, req)
	}
}

func (s *Server) cacheControl() string {
	return fmt.Sprintf("public, max-age=%d", int(s.o.MaxAge.Seconds()))
}

func (s *Server) serveHead(w http.ResponseWriter, req *http.Request) {
	b, err := s.head()
	if err != nil {
		http.Error(w, "deny list unavailable", http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	h.Set("Content-Type", HeadMediaType)
	h.Set("Cache-Control", s.cacheControl())
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if req.Method != http.MethodHead {
		w.Write(b)
	}
}

// head returns the current signed head statement, signing a new one when
// the version changed or the last is HeadInterval old.
func (s *Server) head() ([]byte, error) {
	cur := s.p.Current()
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hd != nil && s.hdV == cur.Version() && now.Sub(s.hdT) < s.o.HeadInterval && !now.Before(s.hdT) {
		return s.hd, nil
	}
	h := denylist.HeadOf(cur, now, s.o.HeadTTL)
	h.NextKey = s.o.NextKey
	b, err := denylist.SignHead(s.o.Key, h)
	if err != nil {
		return nil, err
	}
	s.hd, s.hdV, s.hdT = b, cur.Version(), now
	return b, nil
}

func (s *Server) serveList(w http.ResponseWriter, req *http.Request) {
	since := uint64(0)
	if q := req.URL.Query().Get("since"); q != "" {
		v, err := strconv.ParseUint(q, 10, 64)
		if err != nil {
			http.Error(w, "since: want a version number", http.StatusBadRequest)
			return
		}
		since = v
	}
	a, err := s.p.Answer(req.Context(), since)
	if err != nil {
		http.Error(w, "deny list unavailable", http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	if a.Ahead {
		h.Set("Cache-Control", "no-store")
		http.Error(w, fmt.Sprintf("version %d is newer than the back office's %d", since, a.Current.Version()), http.StatusConflict)
		return
	}
	kind := byte('d')
	switch {
	case a.UpToDate:
		kind = 'u'
	case a.Snapshot != nil:
		kind = 's'
	}
	etag := answerETag(a.Current.ID(), since, a.Current.Version(), kind)
	h.Set("ETag", etag)
	h.Set("Cache-Control", s.cacheControl())
	if etagMatch(req.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if a.UpToDate {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeFile(w, req, a)
}

func writeFile(w http.ResponseWriter, req *http.Request, a Answer) {
	h := w.Header()
	h.Set("Content-Type", ListMediaType)
	if a.Snapshot != nil {
		size := int64(denylist.HeaderSize) + 8*int64(a.Snapshot.Len()) + denylist.SignatureSize
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		if req.Method != http.MethodHead {
			a.Snapshot.WriteTo(w) // a failed write is the client's problem
		}
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(a.Delta)))
	if req.Method != http.MethodHead {
		w.Write(a.Delta)
	}
}
