package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/faregate/faregate"
	"github.com/faregate/faregate/emv/cardsim"
)

func newDemoCmd() *cobra.Command {
	var (
		g       gateFlags
		cards   string
		network bool
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

Then it plays a week on a bus network with the good cards: every tap goes
through the same gate; the back office deny-lists a card whose charge is
declined late and serves the signed list over HTTP on loopback; the gate
syncs it, refuses the card, and takes it back once the debt is paid; at the
end the capping engine settles the week under TfL's bus and tram rules.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fsys := fs.FS(faregate.TestData)
			dir := "testdata/cards"
			if cards != "" {
				abs, err := filepath.Abs(cards)
				if err != nil {
					return err
				}
				fsys, dir = os.DirFS(filepath.Dir(abs)), filepath.Base(abs)
			}
			names, err := fs.Glob(fsys, dir+"/*.json")
			if err != nil || len(names) == 0 {
				return usageErr("no card profiles (*.json) in %s", dir)
			}
			k, err := g.kernel(cmd.Context(), false)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "CARD\tSCHEME\tODA\tDECISION\tREASON\tTAP µs\tGATE µs\tAS EXPECTED")
			failed := 0
			for _, name := range names {
				card, err := cardsim.LoadFS(fsys, name, cardsim.Options{})
				if err != nil {
					return err
				}
				timed := &timedCard{card: card}
				out, tap := runTap(cmd.Context(), k, timed, card.Profile().Name)
				want := card.Profile().Expect
				ok := want.Decision == string(out.Decision) && want.Reason == string(out.Reason) &&
					(want.ODAStage == "" || want.ODAStage == out.ODA.Stage) &&
					(want.ODAReason == "" || want.ODAReason == out.ODA.Reason)
				mark := "yes"
				if !ok {
					mark = fmt.Sprintf("NO (want %s/%s)", want.Decision, want.Reason)
					failed++
				}
				reason := string(out.Reason)
				if out.ODA.Stage != "" {
					reason += " (" + out.ODA.Stage + "/" + out.ODA.Reason + ")"
				}
				scheme := string(out.Scheme)
				if scheme == "" {
					scheme = "-"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%.0f\t%.0f\t%s\n", path.Base(name[:len(name)-5]), scheme,
					out.ODA.Method, out.Decision, reason, micros(tap.Duration), micros(tap.Duration-timed.spent), mark)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\n%d cards tapped, %d as expected.\n", len(names), len(names)-failed)
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d cards did not reach the expected outcome", failed)}
			}
			if !network {
				return nil
			}
			tr, err := g.trust(cmd.Context())
			if err != nil {
				return err
			}
			today := tr.now()
			monday := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC).
				AddDate(0, 0, -(int(today.Weekday())+6)%7)
			if err := runNetworkDemo(cmd.Context(), cmd.OutOrStdout(), monday, tr.keys, tr.revoked); err != nil {
				return fmt.Errorf("network demo: %w", err)
			}
			return nil
		},
	}
	g.register(cmd)
	cmd.Flags().StringVar(&cards, "cards", "", "directory of card profiles (default: the embedded testdata/cards)")
	cmd.Flags().BoolVar(&network, "network", true, "then play a week on the network: gate, deny list over HTTP, capping")
	return cmd
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
