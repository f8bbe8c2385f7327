package acquirer_test

import (
	"context"
	"testing"
	"time"

	"github.com/faregate/faregate/acquirer"
	"github.com/faregate/faregate/rider"
	"github.com/stretchr/testify/require"
)

func TestChargeApproved(t *testing.T) {
	var ledger syncBuffer
	_, addr := startHost(t, acquirer.Rules{TokenKey: "", Default: "00"}, &ledger, nil)
	c := dial(t, addr, acquirer.Options{})
	ctx := context.Background()
	r, err := c.Do(ctx, acquirer.Request{Kind: acquirer.KindCharge, Reference: "charge1", Terminal: "G0000001", Amount: 290, Currency: gbp, Card: testCard(t)})
	require.NoError(t, err)
	require.True(t, r.Approved(), "code %s", r.Code)
	require.Equal(t, 1, r.Attempts)
	require.NotEmpty(t, r.AuthCode)

	es := ledger.entries(t)
	var charges []acquirer.LedgerEntry
	for _, e := range es {
		if e.MTI == "0200" {
			charges = append(charges, e)
		}
	}
	require.Len(t, charges, 1)
	require.Equal(t, "476173******0119", charges[0].MaskedPAN)
	require.EqualValues(t, 290, charges[0].Effect)
	require.Equal(t, "GBP", charges[0].Currency)
	require.Equal(t, "charge1", charges[0].RRN)
	require.NotContains(t, ledger.String(), testPAN)
}

func TestDeclineRulesByToken(t *testing.T) {
	var ledger syncBuffer
	rules := acquirer.Rules{
		TokenKey: "66617265676174652074657374207465737420746f6b656e206b657920333220",
		Rules:    []acquirer.Rule{{Tokens: []rider.Token{{}}, ResponseCode: "05"}},
	}
	rules.TokenKey = hexOf(testTokenKey)
	rules.Rules[0].Tokens = []rider.Token{testToken()}
	rules.Rules[0].MTI = []string{"0200"}
	rules.Rules[0].ResponseCode = "51"
	rules.Rules[0].MAC = "24"
	_, addr := startHost(t, rules, &ledger, nil)
	c := dial(t, addr, acquirer.Options{})
	ctx := context.Background()
	r, err := c.Do(ctx, acquirer.Request{Kind: acquirer.KindCharge, Reference: "c2", Terminal: "G0000001", Amount: 560, Currency: gbp, Card: testCard(t)})
	require.NoError(t, err)
	require.Equal(t, "51", r.Code)
	require.Equal(t, "24", r.MAC)
	require.False(t, r.Approved())
	// The account check of the same card is not a 0200: approved.
	r, err = c.Do(ctx, acquirer.Request{Kind: acquirer.KindAccountCheck, Reference: "chk", Terminal: "G0000001", Currency: gbp, Card: testCard(t)})
	require.NoError(t, err)
	require.True(t, r.Approved())
	es := ledger.entries(t)
	require.Equal(t, testToken(), *es[len(es)-1].Token)
	require.Empty(t, held(es))
}

func TestTimeoutReversedAndRetried(t *testing.T) {
	var ledger syncBuffer
	rules := acquirer.Rules{Rules: []acquirer.Rule{
		{MTI: []string{"0200"}, Drop: true, Times: 1},
	}}
	_, addr := startHost(t, rules, &ledger, nil)
	c := dial(t, addr, acquirer.Options{SendTimeout: 200 * time.Millisecond})
	r, err := c.Do(context.Background(), acquirer.Request{Kind: acquirer.KindCharge, Reference: "c3", Terminal: "G0000001", Amount: 700, Currency: gbp, Card: testCard(t)})
	require.NoError(t, err)
	require.True(t, r.Approved())
	require.Equal(t, 2, r.Attempts)
	es := ledger.entries(t)
	require.Equal(t, map[string]int{"0200": 2, "0400": 1}, countMTI(es))
	require.EqualValues(t, 700, held(es)["c3"], "taken once: the dropped attempt was reversed")
}

func countMTI(es []acquirer.LedgerEntry) map[string]int {
	m := map[string]int{}
	for _, e := range es {
		if e.MTI != "0800" {
			m[e.MTI]++
		}
	}
	return m
}

// TestNetworkManagement: each connection signs on when it opens, echoes
// when idle, signs off on Close.
func TestNetworkManagement(t *testing.T) {
	var ledger syncBuffer
	_, addr := startHost(t, acquirer.Rules{}, &ledger, nil)
	c := dial(t, addr, acquirer.Options{Connections: 1, EchoInterval: 50 * time.Millisecond})
	require.Eventually(t, func() bool { return countNetwork(ledger.entries(t))["301"] >= 3 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, c.Close())
	require.Eventually(t, func() bool { return countNetwork(ledger.entries(t))["002"] == 1 }, 5*time.Second, 10*time.Millisecond)
	es := ledger.entries(t)
	require.Equal(t, "001", es[0].Network, "sign-on first")
	require.Equal(t, "002", es[len(es)-1].Network, "sign-off last")
}

func countNetwork(es []acquirer.LedgerEntry) map[string]int {
	m := map[string]int{}
	for _, e := range es {
		if e.MTI == "0800" {
			m[e.Network]++
		}
	}
	return m
}

// TestReconnect: the pool reconnects after the host goes away and comes
// back on the same address, and charges flow again.
func TestReconnect(t *testing.T) {
	var ledger syncBuffer
	ln := listen(t)
	addr := ln.Addr().String()
	h, err := acquirer.NewHost(acquirer.Rules{}, &ledger, acquirer.HostOptions{})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- h.Serve(ln) }()
	c := dial(t, addr, acquirer.Options{Connections: 2})
	h.Close()
	<-done
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err = c.Do(ctx, acquirer.Request{Reference: "x", Terminal: "G1", Amount: 1, Currency: gbp, Card: testCard(t)})
	cancel()
	require.ErrorIs(t, err, acquirer.ErrUnavailable, "nothing sent while the host is down")
	serveHost(t, listenOn(t, addr), acquirer.Rules{}, &ledger, ledger.entries(t))
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Do(ctx, acquirer.Request{Reference: "x", Terminal: "G1", Amount: 1, Currency: gbp, Card: testCard(t)})
	require.NoError(t, err)
	require.True(t, r.Approved())
}
