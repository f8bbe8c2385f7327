package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/faregate/faregate/acquirer"
)

// acquirerFlags are faregate backend's acquirer link options.
type acquirerFlags struct {
	addr, acquirerID, merchantID, merchantName string
	firstRide                                  string
	timeout, connect, interval, retapSpacing   time.Duration
	connections                                int
}

func (f *acquirerFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.addr, "acquirer", "", "ISO 8583 acquirer host:port: send settled charges, account checks and debt recovery (docs/iso8583.md); needs --denylist-key")
	cmd.Flags().StringVar(&f.acquirerID, "acquirer-id", "999001", "acquiring institution id (field 32, up to 11 digits)")
	cmd.Flags().StringVar(&f.merchantID, "merchant-id", "FAREGATE0000001", "card acceptor id (field 42, up to 15 characters)")
	cmd.Flags().StringVar(&f.merchantName, "merchant-name", "FAREGATE TRANSIT", "card acceptor name and location (field 43, up to 40 characters)")
	cmd.Flags().DurationVar(&f.timeout, "acquirer-timeout", 5*time.Second, "wait this long for an answer before reversing and retrying")
	cmd.Flags().DurationVar(&f.connect, "acquirer-connect-timeout", 3*time.Second, "TCP connect timeout to the acquirer")
	cmd.Flags().IntVar(&f.connections, "acquirer-connections", 2, "connections to the acquirer")
	cmd.Flags().StringVar(&f.firstRide, "first-ride-limit", "", "book a card's first decline up to this amount as first-ride risk, not chased (default: off)")
	cmd.Flags().DurationVar(&f.retapSpacing, "retap-spacing", 10*time.Minute, "a tap of a deny-listed card resubmits its debt no sooner than this after the last answer (0: at once)")
	cmd.Flags().DurationVar(&f.interval, "charge-interval", 10*time.Second, "how often the acquirer link looks for charges, new cards, retaps and resubmissions")
}

func (f *acquirerFlags) dial(ctx context.Context, log *slog.Logger) (*acquirer.Client, error) {
	if f.interval <= 0 || f.timeout <= 0 || f.connect <= 0 || f.connections <= 0 || f.retapSpacing < 0 {
		return nil, usageErr("backend: --charge-interval, --acquirer-timeout, --acquirer-connect-timeout and --acquirer-connections must be positive")
	}
	if len(f.merchantName) > 40 || len(f.merchantID) > 15 || len(f.acquirerID) > 11 || f.merchantID == "" || f.acquirerID == "" {
		return nil, usageErr("backend: --acquirer-id (≤ 11 digits), --merchant-id (≤ 15) and --merchant-name (≤ 40) have fixed sizes")
	}
	c, err := acquirer.Dial(ctx, acquirer.Options{
		Addr: f.addr, Connections: f.connections, SendTimeout: f.timeout, ConnectTimeout: f.connect,
		Merchant: acquirer.Merchant{AcquirerID: f.acquirerID, ID: f.merchantID, Name: f.merchantName},
		OnError:  func(err error) { log.Warn("acquirer link", "err", err) },
	})
	if err != nil {
		return nil, fmt.Errorf("backend: acquirer %s: %w", f.addr, err)
	}
	return c, nil
}
