package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	_ "time/tzdata" // rules name IANA zones; do not depend on the host's zoneinfo
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/faregate/faregate/capping"
)

func newCapCmd() *cobra.Command {
	var rulesPath, tapsPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "cap --rules RULES.json --taps TAPS.csv [--json]",
		Short: "Rate taps under fare capping rules and print each rider's charges",
		Long: `cap rates every token's taps under the fare rules: journeys by the transfer
rules, each leg charged min(fare, head-room of every applicable cap), each
service day settled at its end with the taps received by then (later runs
charge adjustments). See docs/capping.md for the rules and taps formats.

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
			ctx := cmd.Context()
			rules, err := readRules(ctx, rulesPath)
			if err != nil {
				return err
			}
			taps, err := readTaps(ctx, tapsPath, rules)
			if err != nil {
				return err
			}
			st, err := settle(ctx, rules, taps)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				var te *capping.TapsError
				if errors.As(err, &te) {
					return usageErr("%s: %w", tapsPath, err)
				}
				return fmt.Errorf("cap: %w", err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeCapJSON(out, st)
			}
			return writeCapTable(out, st, len(taps))
		},
	}
	cmd.Flags().StringVar(&rulesPath, "rules", "", "fare rules (RULES.json)")
	cmd.Flags().StringVar(&tapsPath, "taps", "", "taps (TAPS.csv with a header row)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageErr("cap: %w", err)
	})
	return cmd
}

// settle runs the engine, giving up (and leaving it to finish unseen) when
// ctx is done: the process is about to exit.
func settle(ctx context.Context, rules *capping.Rules, taps []capping.Tap) (*capping.Statement, error) {
	type result struct {
		st  *capping.Statement
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := capping.Settle(rules, taps)
		done <- result{st, err}
	}()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-done:
		return r.st, r.err
	}
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

func readTaps(ctx context.Context, path string, r *capping.Rules) ([]capping.Tap, error) {
	f, err := openInput(ctx, "--taps", path, maxTapsFile, nil)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	taps, err := capping.ParseTaps(f, r) // lines are bounded by the parser
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if ee, ok := errors.AsType[*exitError](err); ok {
			return nil, ee
		}
		return nil, usageErr("%s: %w", path, err)
	}
	return taps, nil
}

// JSON layout of the faregate cap contract.
type capJSON struct {
	Currency string         `json:"currency"`
	Total    string         `json:"total"`
	Riders   []capRiderJSON `json:"riders"`
}

type capRiderJSON struct {
	Token       string       `json:"token"`
	Total       string       `json:"total"`
	Legs        []capLegJSON `json:"legs"`
	Days        []capDayJSON `json:"days"`
	Settlements []capRunJSON `json:"settlements"`
	CapsReached []string     `json:"caps_reached"`
}

type capLegJSON struct {
	Time     string `json:"time"`
	Mode     string `json:"mode"`
	Fare     string `json:"fare"`
	Charged  string `json:"charged"`
	CappedBy string `json:"capped_by"`
}

type capDayJSON struct {
	ServiceDay string `json:"service_day"`
	Charged    string `json:"charged"`
}

type capRunJSON struct {
	Run     string `json:"run"`
	Charged string `json:"charged"`
}

func writeCapJSON(w io.Writer, st *capping.Statement) error {
	c := st.Currency
	out := capJSON{Currency: c.Code, Total: c.Format(st.Total), Riders: []capRiderJSON{}}
	for _, rd := range st.Riders {
		rj := capRiderJSON{
			Token: rd.Token, Total: c.Format(rd.Total),
			Legs: []capLegJSON{}, Days: []capDayJSON{}, Settlements: []capRunJSON{},
			CapsReached: rd.CapsReached(),
		}
		for _, l := range rd.Legs {
			rj.Legs = append(rj.Legs, capLegJSON{
				Time: l.Time.Format(time.RFC3339Nano), Mode: l.Mode,
				Fare: c.Format(l.Fare), Charged: c.Format(l.Charged), CappedBy: l.CappedBy,
			})
		}
		for _, d := range rd.Days {
			rj.Days = append(rj.Days, capDayJSON{ServiceDay: d.Day.String(), Charged: c.Format(d.Charged)})
		}
		for _, s := range rd.Settlements {
			rj.Settlements = append(rj.Settlements, capRunJSON{Run: s.Run.String(), Charged: c.Format(s.Charged)})
		}
		out.Riders = append(out.Riders, rj)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeCapTable(w io.Writer, st *capping.Statement, taps int) error {
	c := st.Currency
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, rd := range st.Riders {
		fmt.Fprintf(w, "rider %s: total %s %s\n", printable(rd.Token), c.Format(rd.Total), c.Code)
		fmt.Fprintln(tw, "  time\tservice day\tmode\tcategory\tfare\tcharged\tcapped by\ttransfer")
		for _, l := range rd.Legs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
				l.Time.Format(time.RFC3339Nano), l.ServiceDay, dash(l.Mode), dash(l.Category),
				c.Format(l.Fare), c.Format(l.Charged), dash(l.CappedBy), dash(l.Transfer))
		}
		tw.Flush()
		fmt.Fprint(tw, "  service day\ttaps\tfares\tcharged\n")
		for _, d := range rd.Days {
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\n", d.Day, d.Taps, c.Format(d.Fares), c.Format(d.Charged))
		}
		tw.Flush()
		fmt.Fprint(tw, "  settlement run\tnew taps\tcharged\n")
		for _, s := range rd.Settlements {
			fmt.Fprintf(tw, "  %s\t%d\t%s\n", s.Run, s.Taps, c.Format(s.Charged))
		}
		tw.Flush()
		reached := rd.CapsReached()
		if len(reached) == 0 {
			reached = []string{"none"}
		}
		fmt.Fprintf(w, "  caps reached: %s; capping saved %s\n\n", printable(strings.Join(reached, ", ")), c.Format(rd.Fares-rd.Total))
	}
	_, err := fmt.Fprintf(w, "total %s %s (%d riders, %d taps)\n", c.Format(st.Total), c.Code, len(st.Riders), taps)
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return printable(s)
}

// printable escapes control characters and invalid UTF-8 in text from the
// input (tokens, modes, categories) before it reaches a terminal: a token
// holding an escape sequence must not drive the operator's terminal.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) || r == utf8.RuneError }) < 0 {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}
