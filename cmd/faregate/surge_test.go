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

// surgeGate is a simulated gate: a journal filled at its share of the
// surge rate and an uploader that sends the oldest unacknowledged taps,
// honours 429/503 Retry-After with jitter, and drops only what an Ack
// names.
type surgeGate struct {
	id      string
	key     ed25519.PrivateKey
	mu      sync.Mutex
	journal []tap.Record // unacknowledged, oldest first
	seq     uint64
}

func (g *surgeGate) record(now time.Time, tk rider.Token) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seq++
	g.journal = append(g.journal, tap.Record{ID: uuid.Must(uuid.NewV7()), Gate: g.id, Seq: g.seq, Time: now, Kind: tap.KindEMV, Token: tk,
		Decision: tap.Open, Reason: "ok", Location: tap.Location{Mode: "bus", Stop: "Surge Street"}})
}

func (g *surgeGate) backlog() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.journal)
}

// upload sends one batch; it reports whether it sent anything and how
// long the server asked it to wait.
func (g *surgeGate) upload(client *http.Client, base string, rng *rand.Rand) (sent bool, wait time.Duration, err error) {
	g.mu.Lock()
	n := min(len(g.journal), 200)
	batch := append([]tap.Record(nil), g.journal[:n]...)
	backlog := len(g.journal)
	g.mu.Unlock()
	if n == 0 {
		return false, 0, nil
	}
	body, err := json.Marshal(tap.Batch{Gate: g.id, Taps: batch, Backlog: int64(backlog)})
	if err != nil {
		return false, 0, err
	}
	req, _ := http.NewRequest("POST", base+"/v1/taps", bytes.NewReader(body))
	tap.SignRequest(req, g.id, g.key, time.Now(), body)
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
		acked := make(map[uuid.UUID]bool, len(ack.Stored))
		for _, id := range ack.Stored {
			acked[id] = true
		}
		g.mu.Lock()
		kept := g.journal[:0]
		for _, r := range g.journal {
			if !acked[r.ID] {
				kept = append(kept, r)
			}
		}
		g.journal = kept
		g.mu.Unlock()
		return true, 0, nil
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		base := time.Duration(max(secs, 1)) * time.Second
		return true, base + time.Duration(rng.Int64N(int64(base))), nil // at least Retry-After, plus jitter
	default:
		return true, 0, fmt.Errorf("gate %s: %d %s", g.id, resp.StatusCode, out)
	}
}

// TestIngestSurge: 200 gates journal taps far faster than the back office
// stores them (FAREGATE_SURGE_RATE taps/s, default 20 000, for
// FAREGATE_SURGE_SECONDS, default 3) and upload with the gate's backoff.
// The back office (the real binary, SQLite) answers 429/503 instead of
// queueing; afterwards every tap is stored exactly once. It reports the
// back office's peak memory (VmHWM) and how long the backlog took to drain.
//
//	FAREGATE_SURGE_SECONDS=60 FAREGATE_SURGE_RATE=50000 go test ./cmd/faregate -run Surge -v -timeout 60m
func TestIngestSurge(t *testing.T) {
	if testing.Short() || raceOn {
		t.Skip("a surge of uploads against the built binary (not race-instrumented: skipped under -race)")
	}
	seconds, rate := envInt("FAREGATE_SURGE_SECONDS", 3), envInt("FAREGATE_SURGE_RATE", 20000)
	const nGates = 200
	bin := faregateBinary(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	ctx := context.Background()
	s, err := backend.OpenSQLite(ctx, data)
	require.NoError(t, err)
	gates := make([]*surgeGate, nGates)
	for i := range gates {
		pub, key, _ := ed25519.GenerateKey(nil)
		gates[i] = &surgeGate{id: fmt.Sprintf("S-%03d", i), key: key}
		require.NoError(t, s.AddGate(ctx, gates[i].id, pub, time.Now()))
	}
	require.NoError(t, s.Close())
	vk, _ := tap.GenerateVaultKey(nil)
	vkPEM, _ := tap.MarshalVaultKey(vk)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vault.key"), vkPEM, 0o600))
	addr := freeAddr(t)
	cmd := exec.Command(bin, "backend", "--data", data, "--listen", addr, "--rules", seedRules, "--vault-key", filepath.Join(dir, "vault.key"), "--no-settle")
	base, logs := startBackend(t, cmd, addr)

	var generated atomic.Int64
	surgeEnd := time.Now().Add(time.Duration(seconds) * time.Second)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Journals fill at the surge rate, in 50 ms ticks spread over the gates.
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		perTick := rate / 20
		i := 0
		for now := range tick.C {
			if now.After(surgeEnd) {
				return
			}
			for range perTick {
				gates[i%nGates].record(now, rider.NewToken([]byte("k"), strconv.Itoa(i%50000), "00"))
				i++
			}
			generated.Add(int64(perTick))
		}
	})
	var refusals, errs atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: nGates}, Timeout: 30 * time.Second}
	for i, g := range gates {
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
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
		})
	}
	// Wait for the surge to end and the gates' backlogs to drain.
	time.Sleep(time.Until(surgeEnd))
	drainStart := time.Now()
	deadline := drainStart.Add(30 * time.Minute)
	for {
		left := 0
		for _, g := range gates {
			left += g.backlog()
		}
		if left == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "backlog of %d taps not drained", left)
		time.Sleep(100 * time.Millisecond)
	}
	drained := time.Since(drainStart)
	close(stop)
	wg.Wait()
	peak := vmHWM(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)) >> 10 // KiB
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), logs.String())
	require.Zero(t, errs.Load())

	s, err = backend.OpenSQLite(ctx, data)
	require.NoError(t, err)
	defer s.Close()
	n, err := s.CountTaps(ctx)
	require.NoError(t, err)
	require.Equal(t, generated.Load(), n, "every tap stored exactly once")
	gs, err := s.Gates(ctx)
	require.NoError(t, err)
	for i, g := range gs {
		require.Equal(t, gates[i].seq, g.LastSeq, g.ID)
		require.EqualValues(t, gates[i].seq, g.Taps, "%s: each tap counted once", g.ID)
	}
	t.Logf("surge: %d taps from %d gates in %d s (%d taps/s offered); %d refusals (429/503) honoured; backlog drained %v after the surge; back office peak RSS %d MiB",
		generated.Load(), nGates, seconds, rate, refusals.Load(), drained.Round(100*time.Millisecond), peak/1024)
}
