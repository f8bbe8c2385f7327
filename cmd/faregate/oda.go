package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/oda"
)

func newODACmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "oda",
		Short: "EMV offline data authentication tools",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newODAVerifyCmd())
	return cmd
}

func newODAVerifyCmd() *cobra.Command {
	var capk, input, transcript, date string
	var testKeys bool
	cmd := &cobra.Command{
		Use:   "verify --capk FILE (--input FILE | --transcript FILE) [--date YYYY-MM-DD] [--test-keys]",
		Short: "Verify a card's offline data authentication (SDA, DDA, fDDA, CDA)",
		Long: `verify authenticates card data offline against a CA public key list, from a
data-object file (--input) or a recorded transcript (--transcript), and prints
one JSON object:

  {"method","ok","stage","reason","issuer_pk_modulus","icc_pk_modulus","icc_dynamic_number"}

Exit status 0 when offline data authentication holds, 1 when it fails (stage
and reason say where and why), 2 when the files or flags cannot be used.

Keys marked "test" in the CA list are used only with --test-keys. The
transaction date is --date, else the input's "date", else its 9A, else today.
See docs/cli.md and docs/oda.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case capk == "":
				return usageErr("oda verify: --capk is required")
			case (input == "") == (transcript == ""):
				return usageErr("oda verify: give exactly one of --input and --transcript")
			}
			ctx := cmd.Context()
			b, err := readInput(ctx, "--capk", capk, maxJSONInput)
			if err != nil {
				return err
			}
			keys, err := oda.ParseKeyStore(b)
			if err != nil {
				return usageErr("oda verify: --capk: %s: %w", capk, err)
			}
			in, err := readODAInput(ctx, input, transcript)
			if err != nil {
				return err
			}
			switch {
			case date != "":
				if in.Date, err = time.Parse(time.DateOnly, date); err != nil {
					return usageErr("oda verify: --date %q is not YYYY-MM-DD", date)
				}
			case in.Date.IsZero():
				y, m, d := time.Now().Date()
				in.Date = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
			}
			res, verr := oda.NewVerifier(keys, oda.Options{TestMode: testKeys}).Verify(in)
			out, err := json.Marshal(oda.Summarize(res, verr))
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(cmd.OutOrStdout(), "%s\n", out); err != nil {
				return err
			}
			if verr != nil {
				return &exitError{code: 1, err: verr}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&capk, "capk", "", "CA public key list (JSON)")
	f.StringVar(&input, "input", "", "card data objects (JSON, see docs/cli.md)")
	f.StringVar(&transcript, "transcript", "", "recorded APDU transcript (JSON)")
	f.StringVar(&date, "date", "", "transaction date YYYY-MM-DD (overrides the input's)")
	f.BoolVar(&testKeys, "test-keys", false, "use CA keys marked test (certification and test cards)")
	return cmd
}

// readODAInput reads --input or --transcript, bounded, and refuses an
// object with a duplicate key (JSON would keep the last silently).
func readODAInput(ctx context.Context, input, transcript string) (*oda.Input, error) {
	path, parse, flag := input, oda.ParseInputJSON, "--input"
	if transcript != "" {
		path, parse, flag = transcript, func(b []byte) (*oda.Input, error) { return replayTranscript(ctx, b) }, "--transcript"
	}
	b, err := readInput(ctx, flag, path, maxJSONInput)
	if err != nil {
		return nil, err
	}
	if err := checkJSONKeys(b); err != nil {
		return nil, usageErr("oda verify: %s %s: %w", flag, path, err)
	}
	in, err := parse(b)
	if err != nil {
		return nil, usageErr("oda verify: %s %s: %w", flag, path, err)
	}
	return in, nil
}

// replayTranscript reads a recorded tap through the gate's own kernel.
// Without a recorded 9A the date stays zero: the caller's --date or today.
func replayTranscript(ctx context.Context, b []byte) (*oda.Input, error) {
	tr, err := emv.ParseTranscript(b)
	if err != nil {
		return nil, err
	}
	return emv.ODAInputFromTranscript(ctx, tr, time.Time{})
}
