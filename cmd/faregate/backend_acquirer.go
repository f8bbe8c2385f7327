package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/faregate/faregate/acquirer"
	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/capping"
	"github.com/spf13/cobra"
)

// acquirerFlags are faregate backend's flags of the acquirer link
// (docs/iso8583.md).
type acquirerFlags struct {
	addr, acquirerID, merchantID, merchantName string
	connections                                int
	interval                                   time.Duration
}

func (f *acquirerFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.addr, "acquirer", "", "ISO 8583 acquirer host:port (docs/iso8583.md): send settled charges there")
	cmd.Flags().StringVar(&f.acquirerID, "acquirer-id", "000000", "acquiring institution id (field 32)")
	cmd.Flags().StringVar(&f.merchantID, "merchant-id", "FAREGATE", "card acceptor id (field 42)")
	cmd.Flags().StringVar(&f.merchantName, "merchant-name", "FAREGATE TRANSIT", "card acceptor name and location (field 43)")
	cmd.Flags().IntVar(&f.connections, "acquirer-connections", 2, "connections to the acquirer")
	cmd.Flags().DurationVar(&f.interval, "charge-interval", 10*time.Second, "how often pending charges are sent")
}

// start connects to the acquirer and runs the Charger until ctx ends or
// the returned stop is called.
func (f *acquirerFlags) start(ctx context.Context, store backend.Store, vault acquirer.CardVault, deny acquirer.VersionedDenyList, log *slog.Logger) (func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	client, err := acquirer.Dial(ctx, acquirer.Options{
		Addr: f.addr, Connections: f.connections,
		Merchant: acquirer.Merchant{AcquirerID: f.acquirerID, ID: f.merchantID, Name: f.merchantName},
		OnError:  func(err error) { log.Warn("acquirer link", "err", err) },
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("backend: %w", err)
	}
	seam := storeSeam{store}
	ch := acquirer.NewCharger(client, seam, seam, vault, acquirer.RegistryDenyList(deny), acquirer.ChargerOptions{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		ch.Run(ctx, f.interval, func(err error) { log.Warn("charges", "err", err) })
	}()
	return func() { cancel(); <-done; client.Close() }, nil
}

// storeSeam adapts the back office's store to the Charger: charges by id
// (int64 → decimal), currency by code, the gate of the token's vault
// record for field 41, outcomes to the store's statuses.
type storeSeam struct{ store backend.Store }

func (s storeSeam) ChargesToSend(ctx context.Context, limit int) ([]acquirer.Charge, error) {
	cs, err := s.store.ChargesToSend(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]acquirer.Charge, 0, len(cs))
	for _, c := range cs {
		cur, err := capping.LookupCurrency(c.Currency)
		if err != nil {
			return nil, err
		}
		gate := ""
		if sc, ok, err := s.store.SealedCard(ctx, c.Token); err == nil && ok {
			gate = sc.Gate
		}
		out = append(out, acquirer.Charge{ID: strconv.FormatInt(c.ID, 10), Token: c.Token, Amount: c.Amount, Currency: cur, Gate: gate})
	}
	return out, nil
}

func (s storeSeam) RecordOutcome(ctx context.Context, o acquirer.Outcome) error {
	id, err := strconv.ParseInt(o.Charge.ID, 10, 64)
	if err != nil {
		return fmt.Errorf("backend: charge id %q: %w", o.Charge.ID, err)
	}
	status := backend.ChargeFailed
	switch o.Status {
	case acquirer.StatusApproved:
		status = backend.ChargeApproved
	case acquirer.StatusDeclined:
		status = backend.ChargeDeclined
	}
	ref := o.Result.RRN
	if o.Result.AuthCode != "" {
		ref += "/" + o.Result.AuthCode
	}
	return s.store.RecordOutcome(ctx, id, backend.Outcome{Status: status, Code: o.Result.Code, Reference: ref, At: o.At})
}
