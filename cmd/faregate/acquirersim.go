package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/faregate/faregate/acquirer"
	"github.com/spf13/cobra"
)

func newAcquirerSimCmd() *cobra.Command {
	var listen, rulesFile, ledgerFile string
	cmd := &cobra.Command{
		Use:   "acquirer-sim --listen ADDR --ledger FILE [--rules FILE]",
		Short: "Run a simulated ISO 8583 acquirer host (docs/iso8583.md)",
		Long: `acquirer-sim is an ISO 8583 host on the acquirer link's spec
(docs/iso8583.md). It answers sign-on, echo and sign-off, approves or
declines 0100 and 0200 requests by the rules file (token or PAN ranges,
amounts, response codes, merchant advice codes, latency, dropped answers,
cut connections), undoes what reversals name, and appends every message it
answers to the ledger as a JSON line. Started again on the same ledger, it
replays it, so reversals of what the earlier run took still undo it.
Without --rules every request is approved.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ledgerFile == "" {
				return usageErr("acquirer-sim: --ledger FILE is required")
			}
			var rules acquirer.Rules
			if rulesFile != "" {
				b, err := os.ReadFile(rulesFile)
				if err != nil {
					return usageErr("acquirer-sim: %w", err)
				}
				if rules, err = acquirer.ParseRules(bytes.NewReader(b)); err != nil {
					return usageErr("acquirer-sim: %s: %w", rulesFile, err)
				}
			}
			var replay []acquirer.LedgerEntry
			if b, err := os.ReadFile(ledgerFile); err == nil {
				if replay, err = acquirer.ReadLedger(bytes.NewReader(b)); err != nil {
					return usageErr("acquirer-sim: %s: %w", ledgerFile, err)
				}
			} else if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			f, err := os.OpenFile(ledgerFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			defer f.Close()
			host, err := acquirer.NewHost(rules, f, acquirer.HostOptions{Replay: replay})
			if err != nil {
				return usageErr("acquirer-sim: %w", err)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("acquirer-sim: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "acquirer-sim: listening on %s (ledger %s, %d lines replayed)\n", ln.Addr(), ledgerFile, len(replay))
			done := make(chan error, 1)
			go func() { done <- host.Serve(ln) }()
			select {
			case <-cmd.Context().Done():
			case err := <-done:
				host.Close()
				return fmt.Errorf("acquirer-sim: %w", err)
			}
			if err := host.Close(); err != nil {
				return err
			}
			<-done
			return f.Sync()
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8583", "address to listen on")
	cmd.Flags().StringVar(&rulesFile, "rules", "", "rules file (JSON, docs/iso8583.md); default: approve everything")
	cmd.Flags().StringVar(&ledgerFile, "ledger", "", "ledger file: one JSON line per message answered (appended; replayed on start)")
	return cmd
}
