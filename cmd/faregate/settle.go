package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/capping"
)

func newSettleCmd() *cobra.Command {
	var sf storeFlags
	var rulesPath, dayFlag, shardFlag string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "settle --day YYYY-MM-DD [--shard i/n] --rules RULES.json (--data DIR | --db URL) [--json]",
		Short: "Settle a service day: one charge per rider, capped, adjustments for late taps",
		Long: `settle rates every rider with a leg in the day's run under the fare rules
(the capping engine, the same numbers as faregate cap) and records one charge
per rider = what the engine now says minus what earlier runs charged
(docs/backend.md). Re-running a day changes nothing; a run killed anywhere and
run again ends with the charges of a clean run. --shard i/n settles the riders
whose token falls in shard i (0-based) of n, so n workers can run at once
against PostgreSQL. Days are settled in order.

Exit status 2 on unusable flags or rules.`,
		Args: noArgs("settle"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rulesPath == "" || dayFlag == "" {
				return usageErr("settle: --rules and --day are required")
			}
			day, err := capping.ParseDate(dayFlag)
			if err != nil {
				return usageErr("settle: --day: want YYYY-MM-DD")
			}
			shard, err := parseShard(shardFlag)
			if err != nil {
				return err
			}
			rules, err := readRules(cmd.Context(), rulesPath)
			if err != nil {
				return err
			}
			store, err := sf.open(cmd.Context(), "settle")
			if err != nil {
				return err
			}
			defer store.Close()
			st := &backend.Settler{Store: store, Rules: rules}
			var bar *progressbar.ProgressBar
			if isTerminal(os.Stderr) {
				bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription("settling "+day.String()),
					progressbar.OptionShowCount(), progressbar.OptionSetItsString("riders"), progressbar.OptionShowIts(), progressbar.OptionClearOnFinish())
				st.Progress = func(n int) { bar.Set(n) }
			}
			sum, err := st.Settle(cmd.Context(), day, shard)
			if bar != nil {
				bar.Finish()
			}
			if err != nil {
				return fmt.Errorf("settle: %w", err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(sum)
			}
			_, err = fmt.Fprintf(out, "settled %s (shard %d/%d): %d riders, %d taps, charged %s %s, %d adjustments, %d refunds\n",
				sum.Day, shard.I, shard.N, sum.Riders, sum.Taps, sum.Charged, rules.Currency.Code, sum.Adjustments, sum.Refunds)
			return err
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&rulesPath, "rules", "", "fare rules (the capping rules format)")
	cmd.Flags().StringVar(&dayFlag, "day", "", "the service day to settle (YYYY-MM-DD)")
	cmd.Flags().StringVar(&shardFlag, "shard", "0/1", "settle shard i of n (0 ≤ i < n)")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"day","riders","taps","charged","adjustments","refunds"}`)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("settle: %w", err) })
	return cmd
}

func parseShard(s string) (backend.Shard, error) {
	i, n, ok := strings.Cut(s, "/")
	si, err1 := strconv.Atoi(i)
	sn, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || sn < 1 || sn > 1024 || si < 0 || si >= sn {
		return backend.Shard{}, usageErr("settle: --shard: want i/n with 0 ≤ i < n ≤ 1024, got %q", s)
	}
	return backend.Shard{I: si, N: sn}, nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
