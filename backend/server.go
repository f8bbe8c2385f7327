package backend

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is faregate backend's HTTP server: ingest, the read API, the
// extra routes its caller adds (the deny list) and /metrics.
type Server struct {
	Ingest *Ingest
	Read   *ReadAPI
	QR     *QRAPI // nil: no QR credential endpoints
	// Extra routes, pattern → handler (e.g. "GET /v1/denylist").
	Extra    map[string]http.Handler
	Gatherer prometheus.Gatherer // nil: no /metrics
}

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/taps", s.Ingest)
	if s.Read != nil {
		s.Read.Register(mux)
	}
	if s.QR != nil {
		s.QR.Register(mux)
	}
	for p, h := range s.Extra {
		mux.Handle(p, h)
	}
	if s.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	return mux
}

// Serve serves on l until ctx ends, then shuts down gracefully: it stops
// accepting, lets requests in flight finish (up to 30 s) and stores the
// batches already queued.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	s.Ingest.Close()
	return err
}
