package main

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/faregate/faregate/acquirer"
	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/stretchr/testify/require"
)

// chargeStore is a back-office store with pending charges: only the
// methods the acquirer seam calls are implemented.
type chargeStore struct {
	backend.Store
	mu       sync.Mutex
	pending  []backend.Charge
	gates    map[rider.Token]string
	outcomes map[int64]backend.Outcome
}

func (s *chargeStore) ChargesToSend(ctx context.Context, limit int) ([]backend.Charge, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.pending[:min(limit, len(s.pending))]
	s.pending = s.pending[len(out):]
	return out, nil
}

func (s *chargeStore) SealedCard(ctx context.Context, t rider.Token) (backend.SealedCard, bool, error) {
	g, ok := s.gates[t]
	return backend.SealedCard{Token: t, Gate: g}, ok, nil
}

func (s *chargeStore) RecordOutcome(ctx context.Context, id int64, o backend.Outcome) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outcomes[id] = o
	return nil
}

type mapVault map[rider.Token]tap.CardData

func (v mapVault) CardData(ctx context.Context, t rider.Token) (tap.CardData, error) {
	return v[t], nil
}

type listedTokens struct {
	mu sync.Mutex
	m  map[rider.Token]int64
}

func (l *listedTokens) AddLateDecline(ctx context.Context, t rider.Token, amountMinor int64, currency string, at time.Time, actor string) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[t] = amountMinor
	return uint64(len(l.m)), nil
}

func (l *listedTokens) Remove(ctx context.Context, t rider.Token, reason, actor string) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, t)
	return uint64(len(l.m)), nil
}

// TestBackendAcquirerSeam: the back office's pending charges go through
// the seam and the Charger to a simulated acquirer; outcomes come back as
// the store's statuses, a decline lists the token.
func TestBackendAcquirerSeam(t *testing.T) {
	key := []byte("token key")
	good, poor := rider.NewToken(key, "4761739001010119", "01"), rider.NewToken(key, "5413330089010434", "00")
	var ledger lockedLedger
	host, err := acquirer.NewHost(acquirer.Rules{Rules: []acquirer.Rule{
		{PANRanges: []acquirer.PANRange{{From: "5413", To: "5413"}}, ResponseCode: "51"},
	}}, &ledger, acquirer.HostOptions{})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go host.Serve(ln)
	defer host.Close()

	store := &chargeStore{
		pending: []backend.Charge{
			{ID: 7, Token: good, Amount: 290, Currency: "USD", Status: backend.ChargePending},
			{ID: 8, Token: poor, Amount: 560, Currency: "USD", Status: backend.ChargePending},
		},
		gates:    map[rider.Token]string{good: "G-1", poor: "G-2"},
		outcomes: map[int64]backend.Outcome{},
	}
	vault := mapVault{good: {PAN: "4761739001010119", PSN: "01"}, poor: {PAN: "5413330089010434", PSN: "00"}}
	listed := &listedTokens{m: map[rider.Token]int64{}}
	af := acquirerFlags{addr: ln.Addr().String(), acquirerID: "1", merchantID: "M", merchantName: "N", connections: 1, interval: 10 * time.Millisecond}
	stop, err := af.start(context.Background(), store, vault, listed, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		store.mu.Lock()
		defer store.mu.Unlock()
		return len(store.outcomes) == 2
	}, 10*time.Second, 10*time.Millisecond)
	stop()

	require.Equal(t, backend.ChargeApproved, store.outcomes[7].Status)
	require.Equal(t, "00", store.outcomes[7].Code)
	require.Regexp(t, `^7/A\d{5}$`, store.outcomes[7].Reference)
	require.Equal(t, backend.ChargeDeclined, store.outcomes[8].Status)
	require.Equal(t, "51", store.outcomes[8].Code)
	require.Equal(t, map[rider.Token]int64{poor: 560}, listed.m)
	es, err := ledger.entries()
	require.NoError(t, err)
	var held capping.Amount
	for _, e := range es {
		held += e.Effect
		if e.MTI == "0200" && e.Amount == 290 {
			require.Equal(t, acquirer.TerminalID("G-1"), e.Terminal, "field 41 is the gate of the vault record")
		}
	}
	require.EqualValues(t, 290, held)
}
