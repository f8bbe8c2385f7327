package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/faregate/faregate/acquirer"
	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/backend/charging"
	"github.com/faregate/faregate/backend/console"
	"github.com/faregate/faregate/backend/denylistreg"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/denylist/dlsync"
	"github.com/faregate/faregate/qr"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
)

// demoClock is the simulated time every part of the demo system reads:
// the gates, the uploads, the back office, the acquirer.
type demoClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *demoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *demoClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// demoKeys are the agency's keys, made fresh for the run.
type demoKeys struct {
	vault    *ecdh.PrivateKey
	token    []byte
	dlPub    ed25519.PublicKey
	dlKey    ed25519.PrivateKey
	qr       ed25519.PrivateKey // the QR issuing key (faregate keys qr)
	operator string
}

func newDemoKeys() (demoKeys, error) {
	var k demoKeys
	var err error
	if k.vault, err = tap.GenerateVaultKey(rand.Reader); err != nil {
		return k, err
	}
	k.token = make([]byte, 32)
	op := make([]byte, 16)
	if _, err = rand.Read(k.token); err != nil {
		return k, err
	}
	if _, err = rand.Read(op); err != nil {
		return k, err
	}
	k.operator = hex.EncodeToString(op)
	if _, k.qr, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return k, err
	}
	k.dlPub, k.dlKey, err = denylist.GenerateKey(rand.Reader)
	return k, err
}

// demoBackOffice is faregate backend's parts, built as the subcommand
// builds them, on SQLite in dir, serving HTTP on a loopback port.
type demoBackOffice struct {
	store    backend.Store
	dlStore  *denylistreg.SQLiteStore
	registry *denylistreg.Registry
	vault    *backend.Vault
	settler  *backend.Settler
	read     *backend.ReadAPI
	qr       *backend.QRVerifier // verifies uploaded QR taps, as --qr-key does
	qrAPI    *backend.QRAPI      // issues and revokes QR credentials, as --qr-key does
	url      string
	stop     context.CancelFunc
	done     chan error
	closers  []func()
}

func startBackOffice(ctx context.Context, dir string, k demoKeys, rules *capping.Rules, clock *demoClock, qrIssuers *qr.Issuers) (*demoBackOffice, error) {
	b := &demoBackOffice{done: make(chan error, 1)}
	var err error
	if b.store, err = backend.Open(ctx, "", dir); err != nil {
		return nil, err
	}
	b.closers = append(b.closers, func() { b.store.Close() })
	if b.dlStore, err = denylistreg.OpenSQLite(ctx, dir+"/denylist.db"); err != nil {
		b.close()
		return nil, err
	}
	b.closers = append(b.closers, func() { b.dlStore.Close() })
	if b.registry, err = denylistreg.New(ctx, b.dlStore, denylistreg.Options{Key: k.dlKey, Now: clock.Now}); err != nil {
		b.close()
		return nil, err
	}
	if qs, ok := b.store.(backend.QRStore); ok {
		b.qr, err = backend.NewQRVerifier(qs, qrIssuers, 0, nil)
		b.qrAPI = &backend.QRAPI{Store: b.store, QR: qs, Key: k.qr, Denylist: b.registry, Token: k.operator, Now: clock.Now}
	} else {
		err = fmt.Errorf("demo: the store keeps no QR credentials")
	}
	if err != nil {
		b.close()
		return nil, err
	}
	if err := b.serve(ctx, k, rules, clock); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// serve mounts ingest, read API, deny list and console, as faregate
// backend does, and listens on 127.0.0.1 on an ephemeral port.
func (b *demoBackOffice) serve(ctx context.Context, k demoKeys, rules *capping.Rules, clock *demoClock) error {
	reg := prometheus.NewRegistry()
	m := backend.NewMetrics(reg)
	b.read = &backend.ReadAPI{Store: b.store, Rules: rules, Token: k.operator, DenyList: b.registry, Now: clock.Now}
	srv := &backend.Server{
		Ingest:   backend.NewIngest(b.store, m, backend.IngestOptions{Writers: 1, Now: clock.Now, QR: b.qr}),
		Read:     b.read,
		QR:       b.qrAPI,
		Gatherer: reg,
	}
	b.vault = backend.NewVault(b.store, k.vault, k.token)
	b.settler = &backend.Settler{Store: b.store, Rules: rules, Metrics: m, Now: clock.Now}
	h, err := b.registry.NewServer(dlsync.ServerOptions{})
	if err != nil {
		return err
	}
	con, err := console.New(console.Options{API: b.read, Vault: b.vault})
	if err != nil {
		return err
	}
	b.closers = append(b.closers, func() { con.Close() })
	srv.Extra = map[string]http.Handler{
		"GET " + dlsync.ListPath: h, "GET " + dlsync.HeadPath: h,
		console.Prefix: con.Handler(), "GET /{$}": http.RedirectHandler(console.Prefix, http.StatusSeeOther),
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	b.url = "http://" + l.Addr().String()
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	b.stop = stop
	go func() { b.done <- srv.Serve(sctx, l) }()
	return nil
}

func (b *demoBackOffice) close() {
	if b.stop != nil {
		b.stop()
		<-b.done
	}
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

// demoAcquirer is faregate acquirer-sim on a loopback port and the back
// office's link to it (acquirer.Client and charging.Link over the store,
// as faregate backend --acquirer runs them).
type demoAcquirer struct {
	host   *acquirer.Host
	served chan error
	client *acquirer.Client
	link   *charging.Link
	ledger lockedLedger
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

// startAcquirer runs the simulator, which declines poor's first charge
// with 51 (insufficient funds), and connects the back office to it.
func startAcquirer(ctx context.Context, bo *demoBackOffice, tokenKey []byte, poor rider.Token, clock *demoClock) (*demoAcquirer, error) {
	rules := acquirer.Rules{TokenKey: hex.EncodeToString(tokenKey), Rules: []acquirer.Rule{
		{Name: "insufficient funds", Tokens: []rider.Token{poor}, MTI: []string{acquirer.MTIFinancialRequest}, ResponseCode: "51", Times: 1},
	}}
	a := &demoAcquirer{served: make(chan error, 1)}
	host, err := acquirer.NewHost(rules, &a.ledger, acquirer.HostOptions{Now: clock.Now})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a.host = host
	go func() { a.served <- host.Serve(ln) }()
	a.client, err = acquirer.Dial(ctx, acquirer.Options{Addr: ln.Addr().String(), Connections: 2, Now: clock.Now,
		Merchant: acquirer.Merchant{AcquirerID: "999001", ID: "FAREGATEDEMO001", Name: "FAREGATE DEMO BUS AND TRAM   LONDON GB"}})
	if err != nil {
		a.close()
		return nil, err
	}
	a.link = charging.New(a.client, bo.store, bo.vault, bo.registry, charging.Options{Currency: bo.settler.Rules.Currency, Now: clock.Now, RetapSpacing: 10 * time.Minute})
	return a, nil
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

// held is what the acquirer's ledger holds, and how many entries took money.
func (a *demoAcquirer) held() (capping.Amount, int, error) {
	es, err := a.ledger.entries()
	var sum capping.Amount
	n := 0
	for _, e := range es {
		sum += e.Effect
		if e.Effect != 0 {
			n++
		}
	}
	return sum, n, err
}

// quietLog discards the libraries' logs (the demo prints its own story).
var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

var _ = fmt.Sprint
