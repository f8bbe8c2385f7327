package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"time"

	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/denylist/dlsync"
	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/qr"
	"github.com/faregate/faregate/tap"
	"github.com/faregate/faregate/validator"
)

// demoGate is one gate daemon's parts, as faregate validator builds them:
// a journal, a station (kernel, ODA, rules, deny list, pass-back), an
// uploader to the back office and a deny-list sync, on their own data
// directory.
type demoGate struct {
	id       string
	journal  *validator.Journal
	station  *validator.Station
	uploader *validator.Uploader
	replica  *denylist.Replica
	sync     *dlsync.Client
	offline  bool // the back-office link is down
}

func (g *demoGate) denylistVersion() uint64 { return g.replica.List().Version() }

// startDemoGate opens gate id under dir and registers its key at the back
// office (faregate backend gates add).
func startDemoGate(ctx context.Context, dir, id, stop string, k demoKeys, bo *demoBackOffice, gf gateFlags, clock *demoClock, zone *time.Location, is *qr.Issuers) (*demoGate, error) {
	g := &demoGate{id: id}
	key, err := tap.GenerateGateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := bo.store.AddGate(ctx, id, key.Public().(ed25519.PublicKey), clock.Now()); err != nil {
		return nil, err
	}
	if g.replica, err = denylist.OpenReplica(ctx, filepath.Join(dir, "denylist"),
		denylist.ReplicaConfig{ListID: denylist.DefaultListID, PublicKey: k.dlPub}); err != nil {
		return nil, err
	}
	if g.sync, err = dlsync.NewClient(dlsync.ClientOptions{Source: &dlsync.HTTPSource{BaseURL: bo.url}, Replica: g.replica,
		Logger: quietLog, Now: clock.Now}); err != nil {
		return nil, err
	}
	cfg, err := gf.config(ctx)
	if err != nil {
		return nil, err
	}
	cfg.TestKeys = true // the riders are software cards, certified under test keys
	cfg.Terminal = emv.Config{Location: zone, Now: clock.Now}
	cfg.Rules = validator.Rules{TokenKey: k.token, DenyList: g.replica, DenyListStale: g.sync.Stale}
	gate, err := validator.NewGateFromConfig(cfg)
	if err != nil {
		return nil, err
	}
	if g.journal, err = validator.OpenJournal(ctx, filepath.Join(dir, "journal.db"),
		validator.JournalOptions{MaxBytes: 1 << 30, Retention: 168 * time.Hour, Now: clock.Now}); err != nil {
		return nil, err
	}
	qrGate, err := newQRGate(is, g.replica, clock.Now)
	if err != nil {
		return nil, err
	}
	loc := tap.Location{Operator: "demo", Line: "12", Stop: stop, Mode: "bus", Role: tap.RoleEntry, Group: id}
	if g.station, err = validator.NewStation(ctx, validator.StationOptions{GateID: id, Location: loc, Zone: zone,
		Passback: time.Minute, Gate: gate, QR: qrGate, Journal: g.journal, Vault: k.vault.PublicKey(),
		DenylistVersion: g.denylistVersion, Now: clock.Now}); err != nil {
		g.journal.Close()
		return nil, err
	}
	if g.uploader, err = validator.NewUploader(validator.UploaderOptions{BaseURL: bo.url, GateID: id, Key: key,
		Journal: g.journal, DenylistVersion: g.denylistVersion, Logger: quietLog, Now: clock.Now}); err != nil {
		g.journal.Close()
		return nil, err
	}
	return g, nil
}

// upload sends the whole backlog, as the uploader's loop does when the
// link is up; it returns the taps the back office acknowledged.
func (g *demoGate) upload(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := g.uploader.UploadOnce(ctx)
		total += n
		if err != nil {
			return total, fmt.Errorf("gate %s upload: %w", g.id, err)
		}
		if n == 0 {
			return total, nil
		}
	}
}

// storedTaps is what the back office holds of gate id.
func storedTaps(ctx context.Context, store backend.Store, id string) (int64, error) {
	gs, err := store.Gates(ctx)
	if err != nil {
		return 0, err
	}
	for _, g := range gs {
		if g.ID == id {
			return g.Taps, nil
		}
	}
	return 0, fmt.Errorf("gate %s not registered", id)
}
