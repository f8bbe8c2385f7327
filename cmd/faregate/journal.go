package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/faregate/faregate/tap"
	"github.com/faregate/faregate/validator"
)

func newJournalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "journal",
		Short: "Inspect a gate's tap journal (read-only, also beside a running gate)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newJournalListCmd(), newJournalStatsCmd())
	return cmd
}

func openJournalRO(cmd *cobra.Command, data string) (*validator.Journal, error) {
	if data == "" {
		return nil, usageErr("--data DIR is required")
	}
	j, err := validator.OpenJournal(cmd.Context(), filepath.Join(data, "journal.db"), validator.JournalOptions{ReadOnly: true})
	if err != nil {
		return nil, usageErr("--data %s: %w", data, err)
	}
	return j, nil
}

// journalEntry is one line of `faregate journal list --json`: the record
// without its sealed card data (only its size), and whether the back
// office acknowledged it. The PAN is only ever masked.
type journalEntry struct {
	tap.Record
	Sealed      []byte `json:"sealed,omitempty"` // always empty: hides the record's
	SealedBytes int    `json:"sealed_bytes"`
	Uploaded    bool   `json:"uploaded"`
}

func newJournalListCmd() *cobra.Command {
	var (
		data   string
		unsent bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list --data DIR [--unsent] [--json]",
		Short: "List the journaled taps in sequence order",
		Long: `Lists the taps of the journal in DIR/journal.db in sequence order: a table,
or with --json one JSON object per line (the tap record of docs/api.md
without its sealed card data, plus "sealed_bytes" and "uploaded").
--unsent lists only the taps the back office has not acknowledged. A PAN is
never shown but masked.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			j, err := openJournalRO(cmd, data)
			if err != nil {
				return err
			}
			defer j.Close()
			w := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			if !asJSON {
				fmt.Fprintln(tw, "SEQ\tTIME\tDECISION\tREASON\tSCHEME\tCARD\tTOKEN\tUPLOADED")
			}
			enc := json.NewEncoder(w)
			err = j.Each(cmd.Context(), unsent, func(r *tap.Record, up bool) error {
				if asJSON {
					return enc.Encode(journalEntry{Record: *r, SealedBytes: len(r.Sealed), Uploaded: up})
				}
				tok := "-"
				if !r.Token.IsZero() {
					tok = r.Token.String()
				}
				_, err := fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%v\n", r.Seq, r.Time.Format(time.RFC3339),
					r.Decision, r.Reason, dash(r.Scheme), dash(r.MaskedPAN), tok, up)
				return err
			})
			if err != nil {
				return err
			}
			if !asJSON {
				return tw.Flush()
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the gate's data directory")
	cmd.Flags().BoolVar(&unsent, "unsent", false, "only taps not yet acknowledged by the back office")
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON lines")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })
	return cmd
}

func newJournalStatsCmd() *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "stats --data DIR",
		Short: `Print {"taps","opened","unsent","oldest_unsent"} of a gate's journal`,
		Long: `Prints one JSON object: {"taps":N,"opened":N,"unsent":N,"oldest_unsent":"RFC3339"|null}
— the taps in the journal (uploaded ones are pruned after the retention
period), how many opened the gate, how many the back office has not
acknowledged, and the time of the oldest of those.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			j, err := openJournalRO(cmd, data)
			if err != nil {
				return err
			}
			defer j.Close()
			return json.NewEncoder(cmd.OutOrStdout()).Encode(j.Stats())
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the gate's data directory")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })
	return cmd
}
