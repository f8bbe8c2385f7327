package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/faregate/faregate"
	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/emv/cardsim"
)

func newDemoCmd() *cobra.Command {
	var (
		g       = gateFlags{demo: true}
		cards   string
		network bool
		sys     = systemOptions{days: 3, riders: 200, reader: readerOptions{wait: time.Minute}}
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the system end to end on embedded defaults",
		Long: `Taps every software card profile (testdata/cards, embedded in the binary)
through the real EMV kernel, offline data authentication and the gate's
decision rules, and prints one row per card: scheme, ODA method, decision,
reason, the whole tap time and the gate's share of it (the software card's
own RSA signing excluded). The last column says whether the gate reached
the outcome the profile expects; the exit status is 1 when one did not.

Then it runs the system on loopback, on one simulated clock: the back
office (SQLite in a temporary directory or --data DIR: ingest, vault,
settlement, deny list, console), the ISO 8583 acquirer simulator, three
gates (journal, uploader, deny-list sync) and --riders riders over --days
service days. The story it prints: gates open offline; one gate loses its
link for a day and catches up; caps are reached and each rider is charged
once a day; a card without funds is declined, deny-listed, refused the next
day, paid off and admitted again; a forged card is refused. It ends with a
summary and exits 1 naming the first step of the story that did not happen.

With --reader NAME (a binary built with -tags pcsc) the first gate also
reads the card presented on that PC/SC reader, once on the first day,
waiting up to --reader-wait: a real card or the vpcd virtual card, through
the same kernel, ODA (the software cards' test CA keys plus --capk),
journal, upload and settlement; the story then has the step "the card on
the reader was read, journaled and settled".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if network && (sys.days < 2 || sys.riders < 1) {
				return usageErr("demo: --days must be at least 2 and --riders at least 1")
			}
			sys.reader.on = cmd.Flags().Changed("reader")
			if err := readerUsage(sys.reader, network); err != nil {
				return err
			}
			if err := emptyDataDir(sys.data); err != nil {
				return err
			}
			fsys, names, err := demoProfiles(cards)
			if err != nil {
				return err
			}
			k, err := g.kernel(cmd.Context(), false)
			if err != nil {
				return err
			}
			if err := tapProfiles(cmd.Context(), cmd.OutOrStdout(), k, fsys, names); err != nil || !network {
				return err
			}
			return runSystemDemo(cmd.Context(), cmd.OutOrStdout(), sys, g)
		},
	}
	g.register(cmd)
	cmd.Flags().StringVar(&cards, "cards", "", "directory of card profiles (default: the embedded testdata/cards)")
	cmd.Flags().BoolVar(&network, "network", true, "then run the system: back office, acquirer simulator, three gates, riders over days")
	cmd.Flags().IntVar(&sys.days, "days", sys.days, "simulated service days (at least 2)")
	cmd.Flags().IntVar(&sys.riders, "riders", sys.riders, "riders, over the card schemes (at least 1)")
	cmd.Flags().StringVar(&sys.data, "data", "", "keep the back office and gates' data in DIR (default: a temporary directory)")
	cmd.Flags().StringVar(&sys.reader.name, "reader", "", `put the first gate on this PC/SC reader too ("" = the first; needs -tags pcsc)`)
	cmd.Flags().DurationVar(&sys.reader.wait, "reader-wait", sys.reader.wait, "how long to wait for a card on --reader")
	cmd.Flags().BoolVar(&sys.keepRunning, "keep-running", false, "keep the back office and its console up until Ctrl-C")
	return cmd
}

// demoProfiles lists the card profiles of dir, or the embedded ones.
func demoProfiles(dir string) (fs.FS, []string, error) {
	fsys, glob := fs.FS(faregate.TestData), "testdata/cards"
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, nil, err
		}
		fsys, glob = os.DirFS(filepath.Dir(abs)), filepath.Base(abs)
	}
	names, err := fs.Glob(fsys, glob+"/*.json")
	if err != nil || len(names) == 0 {
		return nil, nil, usageErr("no card profiles (*.json) in %s", glob)
	}
	return fsys, names, nil
}

// tapProfiles taps every profile once and prints a row each; it fails
// (exit 1) when a card did not reach the outcome its profile expects.
func tapProfiles(ctx context.Context, out io.Writer, k *emv.Kernel, fsys fs.FS, names []string) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "CARD\tSCHEME\tODA\tDECISION\tREASON\tTAP µs\tGATE µs\tAS EXPECTED")
	failed := 0
	for _, name := range names {
		card, err := cardsim.LoadFS(fsys, name, cardsim.Options{})
		if err != nil {
			return err
		}
		timed := &timedCard{card: card}
		res, tap := runTap(ctx, k, timed, card.Profile().Name)
		mark := "yes"
		if want := card.Profile().Expect; !asExpected(want, res) {
			mark = fmt.Sprintf("NO (want %s/%s)", want.Decision, want.Reason)
			failed++
		}
		reason := string(res.Reason)
		if res.ODA.Stage != "" {
			reason += " (" + string(res.ODA.Stage) + "/" + string(res.ODA.Reason) + ")"
		}
		scheme := string(res.Scheme)
		if scheme == "" {
			scheme = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%.0f\t%.0f\t%s\n", path.Base(name[:len(name)-5]), scheme,
			res.ODA.Method, res.Decision, reason, micros(tap.Duration), micros(tap.Duration-timed.spent), mark)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%d cards tapped, %d as expected.\n", len(names), len(names)-failed)
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d cards did not reach the expected outcome", failed)}
	}
	return nil
}

// asExpected reports whether a tap reached the outcome its profile expects.
func asExpected(want cardsim.Expectation, got tapOutput) bool {
	return want.Decision == string(got.Decision) && want.Reason == string(got.Reason) &&
		(want.ODAStage == "" || want.ODAStage == string(got.ODA.Stage)) &&
		(want.ODAReason == "" || want.ODAReason == string(got.ODA.Reason))
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// timedCard measures the time spent inside the software card, so the demo
// can show the gate's own share of a tap.
type timedCard struct {
	card  *cardsim.Card
	spent time.Duration
}

func (t *timedCard) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	start := time.Now()
	defer func() { t.spent += time.Since(start) }()
	return t.card.Transmit(ctx, cmd)
}

// emptyDataDir refuses a --data directory that holds anything: the demo's
// back office and gates start from nothing.
func emptyDataDir(dir string) error {
	if dir == "" {
		return nil
	}
	es, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return usageErr("demo: --data: %w", err)
	case len(es) > 0:
		return usageErr("demo: --data %s is not empty", dir)
	}
	return nil
}
