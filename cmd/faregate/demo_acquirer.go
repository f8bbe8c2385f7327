package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/faregate/faregate/acquirer"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
)

// demoAcquirer is the demo's acquirer link for real: the simulated host on
// a loopback port, the client and the Charger, with a vault and a charge
// book in memory. The host declines the first charge of one token with
// 51 (insufficient funds) and approves everything else.
type demoAcquirer struct {
	host    *acquirer.Host
	served  chan error
	client  *acquirer.Client
	charger *acquirer.Charger
	ledger  lockedLedger

	mu       sync.Mutex
	vault    map[rider.Token]tap.CardData
	pending  []acquirer.Charge
	outcomes map[string]acquirer.Outcome
}

type lockedLedger struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLedger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLedger) entries() ([]acquirer.LedgerEntry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return acquirer.ReadLedger(bytes.NewReader(l.b.Bytes()))
}

func newDemoAcquirer() *demoAcquirer {
	return &demoAcquirer{served: make(chan error, 1), vault: map[rider.Token]tap.CardData{}, outcomes: map[string]acquirer.Outcome{}}
}

// start runs the host, declining poor's first charge, and connects.
func (a *demoAcquirer) start(ctx context.Context, deny acquirer.VersionedDenyList, tokenKey []byte, poor rider.Token, now func() time.Time) error {
	rules := acquirer.Rules{TokenKey: hex.EncodeToString(tokenKey), Rules: []acquirer.Rule{
		{Name: "insufficient funds once", Tokens: []rider.Token{poor}, MTI: []string{acquirer.MTIFinancialRequest}, ResponseCode: "51", Times: 1},
	}}
	host, err := acquirer.NewHost(rules, &a.ledger, acquirer.HostOptions{Now: now})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	a.host = host
	go func() { a.served <- host.Serve(ln) }()
	a.client, err = acquirer.Dial(ctx, acquirer.Options{Addr: ln.Addr().String(), Connections: 1, Now: now,
		Merchant: acquirer.Merchant{AcquirerID: "999001", ID: "FAREGATEDEMO001", Name: "FAREGATE DEMO BUS AND TRAM   LONDON GB"}})
	if err != nil {
		return err
	}
	a.charger = acquirer.NewCharger(a.client, a, a, a, acquirer.RegistryDenyList(deny), acquirer.ChargerOptions{Now: now, Actor: "demo"})
	return nil
}

func (a *demoAcquirer) close() {
	if a.client != nil {
		a.client.Close()
	}
	if a.host != nil {
		a.host.Close()
		<-a.served
	}
}

// file keeps a rider's card data from an opened tap, as the gate would
// seal it to the vault: PAN, PSN, expiry, track 2 and the field 55 data.
func (a *demoAcquirer) file(token rider.Token, t *emv.Tap) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.vault[token]; ok || t.Card.PAN == "" {
		return
	}
	a.vault[token] = tap.CardData{
		PAN: string(t.Card.PAN), PSN: t.Card.PSN, Expiry: t.Card.Expiry,
		Track2: bytes.Clone(t.Data["57"]), EMV: t.Field55(),
	}
}

// charge sends one charge through the Charger and returns its outcome.
func (a *demoAcquirer) charge(ctx context.Context, c acquirer.Charge) (acquirer.Outcome, error) {
	a.mu.Lock()
	a.pending = append(a.pending, c)
	a.mu.Unlock()
	if _, err := a.charger.RunOnce(ctx); err != nil {
		return acquirer.Outcome{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	o, ok := a.outcomes[c.ID]
	if !ok {
		return o, fmt.Errorf("charge %s: no answer from the acquirer", c.ID)
	}
	return o, nil
}

// held is what the acquirer's ledger says it holds.
func (a *demoAcquirer) held() (capping.Amount, error) {
	es, err := a.ledger.entries()
	var sum capping.Amount
	for _, e := range es {
		sum += e.Effect
	}
	return sum, err
}

func (a *demoAcquirer) ChargesToSend(ctx context.Context, limit int) ([]acquirer.Charge, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := min(limit, len(a.pending))
	out := a.pending[:n:n]
	a.pending = a.pending[n:]
	return out, nil
}

func (a *demoAcquirer) RecordOutcome(ctx context.Context, o acquirer.Outcome) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.outcomes[o.Charge.ID] = o
	return nil
}

func (a *demoAcquirer) CardData(ctx context.Context, t rider.Token) (tap.CardData, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.vault[t]
	if !ok {
		return tap.CardData{}, errors.New("demo vault: no card data")
	}
	return c, nil
}
