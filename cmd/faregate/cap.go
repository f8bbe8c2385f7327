package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	_ "time/tzdata" // rules name IANA zones; do not depend on the host's zoneinfo

	"github.com/spf13/cobra"

	"github.com/faregate/faregate/capping"
)

// capGCPercent is the GC target while rating: the heap may grow 20 % over
// the live table, not the default 100 %.
const capGCPercent = 20

// Output formats of faregate cap.
const (
	capFormatTable   = "table"
	capFormatJSON    = "json"
	capFormatCharges = "charges"
)

func newCapCmd() *cobra.Command {
	var rulesPath, tapsPath, format string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "cap --rules RULES.json --taps TAPS.csv [--json | --format table|json|charges]",
		Short: "Rate taps under fare capping rules and print each rider's charges",
		Long: `cap rates every token's taps under the fare rules: journeys by the transfer
rules, each leg charged min(fare, head-room of every applicable cap), each
service day settled at its end with the taps received by then (later runs
charge adjustments). See docs/capping.md for the rules and taps formats.

Output, riders in token order: a table (default); --json (or --format json)
one compact JSON document; --format charges a CSV of what each token owes
per service day (token,service_day,taps,fares,charged).

Exit status 2 when the rules or the taps are unusable; the message names the
line and the problem.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErr("cap: unexpected argument %q (use --rules and --taps)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rulesPath == "" || tapsPath == "" {
				return usageErr("cap: --rules and --taps are required")
			}
			switch {
			case asJSON && cmd.Flags().Changed("format") && format != capFormatJSON:
				return usageErr("cap: --json and --format %s disagree", format)
			case asJSON:
				format = capFormatJSON
			case format != capFormatTable && format != capFormatJSON && format != capFormatCharges:
				return usageErr("cap: --format %q: want table, json or charges", format)
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			rules, err := readRules(ctx, rulesPath)
			if err != nil {
				return err
			}
			tt, err := readTapTable(ctx, tapsPath, rules)
			if err != nil {
				return err
			}
			// From here on the table is nearly all the live heap and what
			// rating allocates is short-lived: collect it early rather than
			// let the heap double (the table holds no pointers, so a
			// collection costs little).
			defer debug.SetGCPercent(debug.SetGCPercent(capGCPercent))
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<20)
			err = writeCap(ctx, w, tt, format)
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("cap: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&rulesPath, "rules", "", "fare rules (RULES.json)")
	cmd.Flags().StringVar(&tapsPath, "taps", "", "taps (TAPS.csv with a header row)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table (same as --format json)")
	cmd.Flags().StringVar(&format, "format", capFormatTable, "output: table, json or charges (CSV per token and service day)")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageErr("cap: %w", err)
	})
	return cmd
}

func readRules(ctx context.Context, path string) (*capping.Rules, error) {
	data, err := readInput(ctx, "--rules", path, capping.MaxRulesSize)
	if err != nil {
		return nil, err
	}
	r, err := capping.ParseRules(data)
	if err != nil {
		return nil, usageErr("%s: %w", path, err)
	}
	return r, nil
}

// readTapTable reads the taps file into a table, on all cores; lines are
// bounded by the parser, the file by maxTapsFile.
func readTapTable(ctx context.Context, path string, r *capping.Rules) (*capping.TapTable, error) {
	f, err := openInput(ctx, "--taps", path, maxTapsFile, nil)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tt, err := capping.ReadTapTable(ctx, f, r, 0)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if ee, ok := errors.AsType[*exitError](err); ok {
			return nil, ee
		}
		return nil, usageErr("%s: %w", path, err)
	}
	return tt, nil
}

// writeCap rates the table and writes it in the format, rider by rider:
// each rider's output is formatted on the rating goroutines and written
// as soon as every earlier rider's is.
func writeCap(ctx context.Context, w *bufio.Writer, tt *capping.TapTable, format string) error {
	r := tt.Rules()
	c := r.Currency
	var total capping.Amount
	riders := 0
	switch format {
	case capFormatCharges:
		w.WriteString("token,service_day,taps,fares,charged\n")
		return tt.Rate(ctx, capping.StreamOptions{Format: chargesFormatter(c)}, func(rt *capping.Rated) error {
			_, err := w.Write(rt.Out)
			return err
		})
	case capFormatJSON:
		// The document names the grand total before the riders: a first
		// pass rates for the total only (the engine is far faster than
		// formatting), the second writes.
		err := tt.Rate(ctx, capping.StreamOptions{}, func(rt *capping.Rated) error {
			total += rt.Rider.Total
			return nil
		})
		if err != nil {
			return err
		}
		b := append([]byte(`{"currency":`), jsonString(nil, c.Code)...)
		b = append(b, `,"total":"`...)
		b = append(c.AppendFormat(b, total), `","riders":[`...)
		w.Write(b)
		err = tt.Rate(ctx, capping.StreamOptions{Format: jsonFormatter(c)}, func(rt *capping.Rated) error {
			if riders > 0 {
				w.WriteByte(',')
			}
			riders++
			_, err := w.Write(rt.Out)
			return err
		})
		if err != nil {
			return err
		}
		_, err = w.WriteString("]}\n")
		return err
	}
	err := tt.Rate(ctx, capping.StreamOptions{Format: tableFormatter(c)}, func(rt *capping.Rated) error {
		total += rt.Rider.Total
		riders++
		_, err := w.Write(rt.Out)
		return err
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "total %s %s (%d riders, %d taps)\n", c.Format(total), c.Code, riders, tt.Len())
	return err
}
