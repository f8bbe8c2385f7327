package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/faregate/faregate"
	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/emv/cardsim"
	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/oda"
	"github.com/faregate/faregate/validator"
)

// gateFlags are the flags every command that runs the kernel shares.
type gateFlags struct {
	capk     string
	revoked  string
	testKeys bool
	date     string
	// demo: without --capk, trust the software cards' test list (faregate
	// demo). Elsewhere that takes an explicit --test-keys.
	demo bool
}

func (g *gateFlags) register(cmd *cobra.Command) {
	def := "required unless --test-keys"
	if g.demo {
		def = "default: the software cards' test list"
	}
	cmd.Flags().StringVar(&g.capk, "capk", "", "CA public key list (JSON, docs/oda.md); "+def)
	cmd.Flags().StringVar(&g.revoked, "revoked", "", "issuer certificate revocation list (JSON, docs/oda.md)")
	cmd.Flags().BoolVar(&g.testKeys, "test-keys", false, "accept CA keys marked test; without --capk, trust the software cards' test list")
	cmd.Flags().StringVar(&g.date, "date", "", "transaction date YYYY-MM-DD (default: today)")
}

// config is what the flags say the gate is: the CA keys, revocations and
// test mode it trusts, and the clock of the transaction date.
func (g *gateFlags) config(ctx context.Context) (validator.Config, error) {
	c := validator.Config{TestKeys: g.testKeys, Terminal: emv.Config{Location: time.Local, Now: time.Now}}
	var err error
	switch {
	case g.capk != "":
		b, err := readInput(ctx, "--capk", g.capk, maxJSONInput)
		if err != nil {
			return c, err
		}
		if c.Keys, err = oda.ParseKeyStore(b); err != nil {
			return c, usageErr("--capk %s: %w", g.capk, err)
		}
		if g.demo {
			// The demo's riders are software cards: trust their test list
			// too, and --capk's keys for a real card on --reader.
			if err := withTestKeys(&c, g.revoked == ""); err != nil {
				return c, err
			}
		}
	case g.testKeys || g.demo:
		// The software cards' own test CA list and revocations.
		c.TestKeys = true
		if c.Keys, err = cardsim.TestKeys(); err != nil {
			return c, err
		}
		if g.revoked == "" {
			if c.Revoked, err = cardsim.TestRevocations(); err != nil {
				return c, err
			}
		}
	default:
		return c, usageErr("--capk is required: the CA public key list the gate trusts (--test-keys trusts the software cards' test list)")
	}
	if g.revoked != "" {
		b, err := readInput(ctx, "--revoked", g.revoked, maxJSONInput)
		if err != nil {
			return c, err
		}
		if c.Revoked, err = oda.ParseRevocations(b); err != nil {
			return c, usageErr("--revoked: %w", err)
		}
	}
	if g.date != "" {
		d, err := time.ParseInLocation("2006-01-02", g.date, time.Local)
		if err != nil {
			return c, usageErr("--date: want YYYY-MM-DD: %w", err)
		}
		c.Terminal.Now = func() time.Time {
			h, m, s := time.Now().Clock()
			return d.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second)
		}
	}
	return c, nil
}

// withTestKeys adds the software cards' test CA list to c's keys (a key
// of c's list wins over a test key of the same RID and index) and, with
// revocations set, their test revocations.
func withTestKeys(c *validator.Config, revocations bool) error {
	test, err := cardsim.TestKeys()
	if err != nil {
		return err
	}
	keys := c.Keys.Keys()
	for _, k := range test.Keys() {
		if _, dup := c.Keys.Lookup(k.RID[:], k.Index); !dup {
			keys = append(keys, k)
		}
	}
	if c.Keys, err = oda.NewKeyStore(keys...); err != nil {
		return err
	}
	c.TestKeys = true
	if revocations {
		c.Revoked, err = cardsim.TestRevocations()
	}
	return err
}

// kernel builds the gate's kernel from the flags.
func (g *gateFlags) kernel(ctx context.Context, record bool) (*emv.Kernel, error) {
	c, err := g.config(ctx)
	if err != nil {
		return nil, err
	}
	c.Terminal.Record = record
	return c.NewKernel()
}

// loadCard opens a software card from a profile file, or by name from the
// embedded testdata/cards. A profile file, and every key file it names, is
// read under maxJSONInput; an unusable one is a usage error (exit 2), like
// a missing one.
func loadCard(ctx context.Context, name string) (*cardsim.Card, error) {
	if _, err := os.Stat(name); err == nil {
		abs, err := filepath.Abs(name)
		if err != nil {
			return nil, usageErr("--card: %w", err)
		}
		// Key paths may climb out of the profile's directory (../pki):
		// read from the root, bounded.
		root := filepath.VolumeName(abs) + string(filepath.Separator)
		rel, err := filepath.Rel(root, abs)
		if err != nil {
			return nil, usageErr("--card: %w", err)
		}
		fsys := limitFS{ctx: ctx, fsys: os.DirFS(root), flag: "--card", limit: maxJSONInput}
		c, err := cardsim.LoadFS(fsys, filepath.ToSlash(rel), cardsim.Options{})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, usageErr("--card %s: %w", name, err)
		}
		return c, nil
	}
	embedded := "testdata/cards/" + strings.TrimSuffix(name, ".json") + ".json"
	if _, err := fs.Stat(faregate.TestData, embedded); err == nil {
		return cardsim.LoadFS(faregate.TestData, embedded, cardsim.Options{})
	}
	return nil, usageErr("--card %s: no such profile file, nor an embedded profile of that name (see faregate demo for the list)", name)
}

func newTapCmd() *cobra.Command {
	var (
		g          gateFlags
		card       string
		transcript string
		mask       bool
		readerName string
		wait       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "tap (--card PROFILE | --reader NAME) [--capk FILE] [--transcript OUT]",
		Short: "Tap one card through the EMV kernel and offline data authentication",
		Long: `Runs one contactless tap through the gate's kernel, offline data
authentication and decision rules, and prints the outcome as JSON.

--card names a software card profile file, or an embedded profile by name
(visa-qvsdc, mastercard-cda, fault-bad-sdad …). --reader taps the card
in a PC/SC reader instead: it waits up to --wait for a card (NAME is the
reader's name or a unique prefix of it, "" the first reader; see faregate
readers; needs a binary built with -tags pcsc). The exit status is 0 when a
decision was made, whatever it is.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			useReader := cmd.Flags().Changed("reader")
			if card == "" && !useReader {
				return usageErr("--card or --reader is required: a profile file or an embedded profile name, or a reader")
			}
			if card != "" && useReader {
				return usageErr("--card and --reader exclude each other")
			}
			k, err := g.kernel(cmd.Context(), transcript != "")
			if err != nil {
				return err
			}
			var out tapOutput
			var tap *emv.Tap
			if useReader {
				if out, tap, err = readerTap(cmd.Context(), k, readerName, wait); err != nil {
					return err
				}
			} else {
				c, err := loadCard(cmd.Context(), card)
				if err != nil {
					return err
				}
				out, tap = runTap(cmd.Context(), k, c, c.Profile().Name)
			}
			if transcript != "" {
				tr := tap.Transcript
				if mask {
					tr = tr.Masked()
				}
				if err := writeJSONOutput(cmd.Context(), "--transcript", transcript, 0o600, tr); err != nil {
					return err
				}
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		},
	}
	g.register(cmd)
	cmd.Flags().StringVar(&card, "card", "", "software card profile (file, or embedded profile name)")
	cmd.Flags().StringVar(&readerName, "reader", "", `tap the card in this PC/SC reader ("" = the first)`)
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Second, "with --reader: how long to wait for a card")
	cmd.Flags().StringVar(&transcript, "transcript", "", "write the APDU transcript to this file (JSON)")
	cmd.Flags().BoolVar(&mask, "mask", false, "mask card data (PAN, track data, name) in the transcript, whatever the tap got to")
	return cmd
}

// tapOutput is the JSON `faregate tap` prints (docs/cli.md).
type tapOutput struct {
	Card        string             `json:"card"`
	Scheme      emv.Scheme         `json:"scheme,omitempty"`
	Application string             `json:"application,omitempty"`
	AID         string             `json:"aid,omitempty"`
	Label       string             `json:"label,omitempty"`
	Kernel      int                `json:"kernel,omitempty"`
	PAN         string             `json:"pan,omitempty"`
	PSN         string             `json:"psn,omitempty"`
	Expiry      string             `json:"expiry,omitempty"`
	Cryptogram  emv.Cryptogram     `json:"cryptogram,omitempty"`
	ODA         odaOutput          `json:"oda"`
	Decision    validator.Verdict  `json:"decision"`
	Reason      validator.Reason   `json:"reason"`
	Error       string             `json:"error,omitempty"`
	Field55     string             `json:"field55,omitempty"`
	TimingsUS   map[string]float64 `json:"timings_us"`
	DurationUS  float64            `json:"duration_us"`
}

type odaOutput struct {
	Method           tapdata.Method `json:"method"`
	Performed        bool           `json:"performed"`
	OK               bool           `json:"ok"`
	Stage            oda.Stage      `json:"stage"`
	Reason           oda.Reason     `json:"reason"`
	IssuerPKModulus  string         `json:"issuer_pk_modulus,omitempty"`
	ICCPKModulus     string         `json:"icc_pk_modulus,omitempty"`
	ICCDynamicNumber string         `json:"icc_dynamic_number,omitempty"`
}

func upperHex(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

// runTap taps card once and describes the outcome. The PAN only ever
// leaves masked.
func runTap(ctx context.Context, k *emv.Kernel, card emv.Transceiver, name string) (tapOutput, *emv.Tap) {
	tap, err := k.Tap(ctx, card)
	d := validator.Rules{}.Decide(tap, err)
	out := tapOutput{
		Card:       name,
		Decision:   d.Verdict,
		Reason:     d.Reason,
		TimingsUS:  map[string]float64{},
		DurationUS: float64(tap.Duration.Nanoseconds()) / 1e3,
	}
	for _, t := range tap.Timings {
		out.TimingsUS[t.Step.String()] = float64(t.Duration.Nanoseconds()) / 1e3
	}
	if err != nil {
		var te *emv.TapError
		if errors.As(err, &te) {
			out.Error = fmt.Sprintf("%s: %s", te.Step, te.Reason)
			if te.Err != nil {
				out.Error += ": " + te.Err.Error()
			}
		} else {
			out.Error = err.Error()
		}
	}
	if tap.AID != nil {
		out.Scheme = tap.Application.Scheme
		out.Application = tap.Application.Name
		out.AID = upperHex(tap.AID)
		out.Label = tap.Label
		out.Kernel = int(tap.Kernel)
	}
	if tap.Card.PAN != "" {
		out.PAN = tap.Card.PAN.Masked()
		out.PSN = tap.Card.PSN
		out.Expiry = tap.Card.Expiry
	}
	out.Cryptogram = tap.Cryptogram
	if err == nil {
		out.Field55 = upperHex(tap.Field55())
	}
	o := tap.ODA
	out.ODA = odaOutput{
		Method: o.Method, Performed: o.Performed, OK: o.OK, Stage: o.Stage(), Reason: o.Reason(),
		IssuerPKModulus: upperHex(o.Recovered.IssuerPKModulus), ICCPKModulus: upperHex(o.Recovered.ICCPKModulus),
		ICCDynamicNumber: upperHex(o.Recovered.ICCDynamicNumber),
	}
	if out.ODA.Method == "" {
		out.ODA.Method = tapdata.MethodNone
	}
	return out, tap
}
