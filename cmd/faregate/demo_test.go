package main

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoKeepRunning: with --keep-running the back office and its console
// stay up after the story, on loopback, behind the operator token, until
// the context ends; the data stays in --data.
func TestDemoKeepRunning(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	data := t.TempDir() + "/kept"
	done := make(chan error, 1)
	go func() {
		done <- runSystemDemo(ctx, &out, systemOptions{days: 2, riders: 10, data: data, keepRunning: true}, gateFlags{demo: true})
	}()
	re := regexp.MustCompile(`Console: (http://127\.0\.0\.1:\d+)/console/\n.*operator token ([0-9a-f]{32})\.`)
	var m []string
	require.Eventually(t, func() bool { m = re.FindStringSubmatch(out.String()); return m != nil }, 60*time.Second, 50*time.Millisecond, out.String())

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(m[1] + "/console/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "the console wants a login")
	req, err := http.NewRequest(http.MethodGet, m[1]+"/v1/gates", nil)
	require.NoError(t, err)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	req.Header.Set("Authorization", "Bearer "+m[2])
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	cancel()
	require.NoError(t, <-done)
	require.FileExists(t, data+"/backoffice/denylist.db")
	require.DirExists(t, data+"/gate-north")
}
