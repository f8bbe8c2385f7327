package acquirer_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/faregate/faregate/acquirer"
	"github.com/faregate/faregate/capping"
	"github.com/stretchr/testify/require"
)

// TestFaults charges 40 riders through a simulator that drops answers,
// answers too late, cuts a connection in the middle of a message, ignores
// the first reversal and restarts halfway. Every charge must end approved
// and the ledger must hold each exactly once: no charge taken twice, none
// lost.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("faults test: a few seconds")
	}
	var ledger syncBuffer
	rules := acquirer.Rules{Rules: []acquirer.Rule{
		{Name: "drop", MTI: []string{"0200"}, Drop: true, Times: 4},
		{Name: "late", MTI: []string{"0200"}, Latency: acquirer.Duration(400 * time.Millisecond), Times: 3},
		{Name: "cut", MTI: []string{"0200"}, Cut: true, Times: 2},
		{Name: "reversal lost", MTI: []string{"0400"}, Drop: true, Times: 1},
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	h1, err := acquirer.NewHost(rules, &ledger, acquirer.HostOptions{})
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- h1.Serve(ln) }()

	bo := newBackOffice()
	want := map[string]capping.Amount{}
	for i := range 40 {
		pan := fmt.Sprintf("47617390010%05d", i)
		tok := bo.addRider(t, pan)
		id := fmt.Sprintf("c%02d", i)
		amt := capping.Amount(100 + 10*i)
		bo.pending[id] = acquirer.Charge{ID: id, Token: tok, Amount: amt, Currency: gbp, Gate: fmt.Sprintf("gate-%d", i%5)}
		want[id] = amt
	}
	client := dial(t, addr, acquirer.Options{SendTimeout: 200 * time.Millisecond, Connections: 3})
	ch := acquirer.NewCharger(client, bo, bo, bo, bo, acquirer.ChargerOptions{Workers: 8})

	// Restart the simulator when half the charges have reached it, with
	// requests in flight; the new one replays the ledger of the old.
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		for countMTI(ledger.entries(t))["0200"] < 20 {
			time.Sleep(2 * time.Millisecond)
		}
		h1.Close()
		<-served
		ln2, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("listen again: %v", err)
			return
		}
		serveHost(t, ln2, acquirer.Rules{}, &ledger, ledger.entries(t))
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for round := 0; len(bo.pending) > 0; round++ {
		require.Less(t, round, 20, "charges still pending: %d", len(bo.pending))
		_, err := ch.RunOnce(ctx)
		require.NoError(t, err)
	}
	<-restarted
	got := map[string]capping.Amount{}
	for id, o := range bo.outcomes {
		require.Equal(t, acquirer.StatusApproved, o.Status, "charge %s: %s %s", id, o.Status, o.Reason)
		got[id] = want[id]
	}
	require.Equal(t, want, got)

	es := ledger.entries(t)
	require.Equal(t, want, held(es), "the acquirer holds every charge exactly once")
	var dropped, duplicates, reversals int
	for _, e := range es {
		if e.Dropped {
			dropped++
		}
		if e.MTI == "0400" || e.MTI == "0401" {
			reversals++
		}
		if e.Duplicate {
			duplicates++
		}
	}
	require.GreaterOrEqual(t, dropped, 6, "the faults happened")
	require.GreaterOrEqual(t, reversals, 6)
	t.Logf("ledger: %d lines, %d dropped or cut, %d reversals", len(es), dropped, reversals)
}
