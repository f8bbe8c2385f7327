package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// surgeTokens are the riders of the surge (tokens made once: the
// generator must not be what limits the offered rate).
var surgeTokens = sync.OnceValue(func() []rider.Token {
	ts := make([]rider.Token, 50000)
	for i := range ts {
		ts[i] = rider.NewToken([]byte("k"), strconv.Itoa(i), "00")
	}
	return ts
})

// surgeGate is a simulated gate. Its journal is counted rather than kept:
// journaled taps are numbered 1..journaled, and the uploader builds the
// oldest unacknowledged ones into a batch when it sends (keeping that
// batch, with the same ids, until an Ack names them), as the gate's
// journal does. It honours 429/503 Retry-After with jitter.
type surgeGate struct {
	id        string
	key       ed25519.PrivateKey
	journaled atomic.Int64 // advanced by the surge's clock
	acked     atomic.Int64 // every tap up to here is stored
	pending   []tap.Record // the batch in flight
}

func (g *surgeGate) backlog() int64 { return g.journaled.Load() - g.acked.Load() }

// batch is the batch in flight, or the next one from the journal.
func (g *surgeGate) batch(now time.Time) []tap.Record {
	if len(g.pending) > 0 {
		return g.pending
	}
	from, to := g.acked.Load()+1, min(g.journaled.Load(), g.acked.Load()+200)
	tokens := surgeTokens()
	for seq := from; seq <= to; seq++ {
		g.pending = append(g.pending, tap.Record{ID: uuid.Must(uuid.NewV7()), Gate: g.id, Seq: uint64(seq), Time: now.Add(-time.Second),
			Kind: tap.KindEMV, Token: tokens[int(seq)%len(tokens)], Decision: tap.Open, Reason: "ok",
			Location: tap.Location{Mode: "bus", Stop: "Surge Street"}})
	}
	return g.pending
}

// upload sends one batch; it reports whether it sent anything and how
// long the server asked it to wait.
func (g *surgeGate) upload(client *http.Client, base string, rng *rand.Rand) (sent bool, wait time.Duration, err error) {
	now := time.Now()
	batch := g.batch(now)
	if len(batch) == 0 {
		return false, 0, nil
	}
	body, err := json.Marshal(tap.Batch{Gate: g.id, Taps: batch, Backlog: g.backlog()})
	if err != nil {
		return false, 0, err
	}
	req, _ := http.NewRequest("POST", base+"/v1/taps", bytes.NewReader(body))
	tap.SignRequest(req, g.id, g.key, now, body)
	resp, err := client.Do(req)
	if err != nil {
		return true, 200 * time.Millisecond, nil // network: back off, retry
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		var ack tap.Ack
		if err := json.Unmarshal(out, &ack); err != nil {
			return true, 0, err
		}
		if len(ack.Stored) != len(batch) || ack.Stored[0] != batch[0].ID || ack.Stored[len(batch)-1] != batch[len(batch)-1].ID {
			return true, 0, fmt.Errorf("gate %s: ack names %d of %d taps", g.id, len(ack.Stored), len(batch))
		}
		g.acked.Add(int64(len(batch)))
		g.pending = g.pending[:0]
		return true, 0, nil
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		base := time.Duration(max(secs, 1)) * time.Second
		return true, base + time.Duration(rng.Int64N(int64(base))), nil // at least Retry-After, plus jitter
	default:
		return true, 0, fmt.Errorf("gate %s: %d %s", g.id, resp.StatusCode, out)
	}
}

// surge is the clock of the gates' journals: first it keeps every gate
// saturated to measure the rate the back office sustains, then it
// journals factor times that rate.
type surge struct {
	gates              []*surgeGate
	calibrate, seconds time.Duration
	factor             int
	sustained          float64 // taps/s stored while saturated
	peakBacklog        int64
}

func (s *surge) stored() (n int64) {
	for _, g := range s.gates {
		n += g.acked.Load()
	}
	return n
}

func (s *surge) backlog() (n int64) {
	for _, g := range s.gates {
		n += g.backlog()
	}
	return n
}

// run drives the journals until the surge ends.
func (s *surge) run() {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	warm, calibrated := start.Add(time.Second), start.Add(time.Second+s.calibrate)
	var warmStored int64
	carry := make([]float64, len(s.gates))
	for now := range tick.C {
		switch {
		case now.Before(calibrated): // saturate: every gate has full batches waiting
			for _, g := range s.gates {
				if g.backlog() < 400 {
					g.journaled.Store(g.acked.Load() + 400)
				}
			}
			if warmStored == 0 && now.After(warm) {
				warmStored = s.stored()
			}
			continue
		case s.sustained == 0:
			s.sustained = float64(s.stored()-warmStored) / s.calibrate.Seconds()
		case now.After(calibrated.Add(s.seconds)):
			return
		}
		perGate := float64(s.factor) * s.sustained / 100 / float64(len(s.gates))
		for i, g := range s.gates {
			carry[i] += perGate
			n := int64(carry[i])
			carry[i] -= float64(n)
			g.journaled.Add(n)
		}
		s.peakBacklog = max(s.peakBacklog, s.backlog())
	}
}

// TestIngestSurge: 200 gates first keep the back office (the real binary,
// SQLite) saturated to measure the rate it sustains, then journal
// FAREGATE_SURGE_FACTOR (default 10) times that rate for
// FAREGATE_SURGE_SECONDS (default 1) and upload with the gate's backoff.
// The back office answers 429/503 instead of queueing; afterwards every
// tap is stored exactly once. It reports the back office's peak memory
// (VmHWM) and how long the backlog took to drain. The minute:
//
//	FAREGATE_SURGE_SECONDS=60 go test ./cmd/faregate -run Surge -v -timeout 60m
func TestIngestSurge(t *testing.T) {
	if testing.Short() || raceOn {
		t.Skip("a surge of uploads against the built binary (not race-instrumented: skipped under -race)")
	}
	const nGates = 200
	s := &surge{calibrate: time.Duration(envInt("FAREGATE_SURGE_CALIBRATE", 2)) * time.Second,
		seconds: time.Duration(envInt("FAREGATE_SURGE_SECONDS", 1)) * time.Second, factor: envInt("FAREGATE_SURGE_FACTOR", 10)}
	bin := faregateBinary(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	ctx := context.Background()
	st, err := backend.OpenSQLite(ctx, data)
	require.NoError(t, err)
	for i := range nGates {
		pub, key, _ := ed25519.GenerateKey(nil)
		s.gates = append(s.gates, &surgeGate{id: fmt.Sprintf("S-%03d", i), key: key})
		require.NoError(t, st.AddGate(ctx, s.gates[i].id, pub, time.Now()))
	}
	require.NoError(t, st.Close())
	vk, _ := tap.GenerateVaultKey(nil)
	vkPEM, _ := tap.MarshalVaultKey(vk)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vault.key"), vkPEM, 0o600))
	addr := freeAddr(t)
	cmd := exec.Command(bin, "backend", "--data", data, "--listen", addr, "--rules", seedRules, "--vault-key", filepath.Join(dir, "vault.key"), "--no-settle")
	base, logs := startBackend(t, cmd, addr)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var refusals, errs, peakWAL atomic.Int64
	wg.Go(func() { // the write-ahead log must stay bounded too: it is disk
		for {
			if fi, err := os.Stat(filepath.Join(data, "backoffice.db-wal")); err == nil && fi.Size() > peakWAL.Load() {
				peakWAL.Store(fi.Size())
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: nGates}, Timeout: 30 * time.Second}
	for i, g := range s.gates {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 9))
			for {
				sent, wait, err := g.upload(client, base, rng)
				if err != nil {
					errs.Add(1)
					t.Error(err)
					return
				}
				if wait > 0 {
					refusals.Add(1)
					time.Sleep(wait)
					continue
				}
				if !sent {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}
		})
	}
	s.run()
	drainStart := time.Now()
	for deadline := drainStart.Add(60 * time.Minute); s.backlog() > 0; time.Sleep(100 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "backlog of %d taps not drained", s.backlog())
		require.Zero(t, errs.Load())
	}
	drained := time.Since(drainStart)
	close(stop)
	wg.Wait()
	peak := vmHWM(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)) >> 10 // KiB
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), logs.String())
	require.Zero(t, errs.Load())
	require.Positive(t, s.sustained)
	require.Less(t, peakWAL.Load(), int64(512<<20), "the SQLite write-ahead log stays bounded")

	st, err = backend.OpenSQLite(ctx, data)
	require.NoError(t, err)
	defer st.Close()
	n, err := st.CountTaps(ctx)
	require.NoError(t, err)
	require.Equal(t, s.stored(), n, "every tap stored exactly once")
	gs, err := st.Gates(ctx)
	require.NoError(t, err)
	for i, g := range gs {
		j := s.gates[i].journaled.Load()
		require.EqualValues(t, j, g.LastSeq, g.ID)
		require.EqualValues(t, j, g.Taps, "%s: each tap counted once", g.ID)
		require.Zero(t, g.Backlog, "%s: drained", g.ID)
	}
	t.Logf("surge: back office sustained %.0f taps/s saturated; then %d× that (%.0f taps/s) offered by %d gates for %v: %d taps in all, peak backlog at the gates %d, %d refusals (429/503) honoured; backlog drained %v after the surge; back office peak RSS %d MiB, write-ahead log at most %d MiB",
		s.sustained, s.factor, float64(s.factor)*s.sustained, nGates, s.seconds, n, s.peakBacklog, refusals.Load(), drained.Round(100*time.Millisecond), peak/1024, peakWAL.Load()>>20)
}
