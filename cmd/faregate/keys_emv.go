package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/faregate/faregate/oda/odatest"
)

// keysEMVFlags are the flags of `faregate keys emv`.
type keysEMVFlags struct {
	out, rid, index, issuerID, pan, issuerExpiry, iccExpiry, caExpiry string
	caBits, issuerBits, iccBits, exponent                             int
	force                                                             bool
}

func newKeysEMVCmd() *cobra.Command {
	var k keysEMVFlags
	cmd := &cobra.Command{
		Use:   "emv --out DIR",
		Short: "Generate a test EMV CA → issuer → card key hierarchy",
		Long: `emv generates a test EMV public key hierarchy with real RSA keys: a
certification authority key, an issuer key certified by it and an ICC (card)
key, and writes to DIR:

  ca.pem, issuer.pem, icc.pem  private keys (PKCS #1 PEM, mode 0600)
  capk.json                    CA key list for "faregate oda verify --capk", marked "test": true
  issuer.json                  the issuer certificate data objects 8F, 90, 92, 9F32
  hierarchy.json               the certificate parameters (RID, index, issuer id, PAN, expiries, serials)

The ICC certificate covers the card's static data, so the software card
makes it when it is personalised (package oda/odatest). Existing files are
kept unless --force. Test keys only: never use them for real cards.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := k.config()
			if err != nil {
				return err
			}
			h, err := newHierarchy(cmd.Context(), cfg)
			if err != nil {
				if cmd.Context().Err() != nil {
					return cmd.Context().Err()
				}
				return usageErr("keys emv: %w", err)
			}
			written, err := h.WriteFiles(k.out, k.force)
			if err != nil {
				return fmt.Errorf("keys emv: %w", err)
			}
			for _, p := range written {
				if _, err := fmt.Fprintln(cmd.OutOrStdout(), p); err != nil {
					return err
				}
			}
			return nil
		},
	}
	k.register(cmd)
	return cmd
}

func (k *keysEMVFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&k.out, "out", "", "directory to write the keys and lists to")
	f.StringVar(&k.rid, "rid", "A000000003", "registered application provider identifier (5 bytes hex)")
	f.StringVar(&k.index, "index", "92", "CA public key index (8F, 1 byte hex)")
	f.IntVar(&k.caBits, "ca-bits", 1408, "CA key modulus bits")
	f.IntVar(&k.issuerBits, "issuer-bits", 1152, "issuer key modulus bits")
	f.IntVar(&k.iccBits, "icc-bits", 1024, "ICC key modulus bits")
	f.IntVar(&k.exponent, "exponent", 3, "public exponent of all three keys (3 or 65537)")
	f.StringVar(&k.pan, "pan", "4761739001010010", "the card's PAN (12 to 19 digits)")
	f.StringVar(&k.issuerID, "issuer-id", "", "issuer identifier: 3 to 8 leading PAN digits (default: the PAN's first 6)")
	f.StringVar(&k.issuerExpiry, "issuer-expiry", "1230", "issuer certificate expiry MMYY")
	f.StringVar(&k.iccExpiry, "icc-expiry", "1230", "ICC certificate expiry MMYY")
	f.StringVar(&k.caExpiry, "ca-expiry", "", "CA key expiry YYYY-MM-DD in the CA list (default none)")
	f.BoolVar(&k.force, "force", false, "overwrite existing files")
}

// config checks the flags and turns them into the hierarchy to generate.
func (k *keysEMVFlags) config() (odatest.HierarchyConfig, error) {
	var cfg odatest.HierarchyConfig
	if k.out == "" {
		return cfg, usageErr("keys emv: --out is required")
	}
	r, err := hex.DecodeString(k.rid)
	if err != nil || len(r) != 5 {
		return cfg, usageErr("keys emv: --rid %q is not 5 bytes of hex", k.rid)
	}
	idx, err := hex.DecodeString(k.index)
	if err != nil || len(idx) != 1 {
		return cfg, usageErr("keys emv: --index %q is not 1 byte of hex", k.index)
	}
	for _, b := range []struct {
		name string
		v    int
	}{{"--ca-bits", k.caBits}, {"--issuer-bits", k.issuerBits}, {"--icc-bits", k.iccBits}} {
		if b.v%8 != 0 || b.v < 512 || b.v > 1984 {
			return cfg, usageErr("keys emv: %s %d: want a multiple of 8 from 512 to 1984", b.name, b.v)
		}
	}
	switch {
	case k.exponent != 3 && k.exponent != 65537:
		return cfg, usageErr("keys emv: --exponent %d: want 3 or 65537", k.exponent)
	case k.issuerBits > k.caBits:
		return cfg, usageErr("keys emv: the issuer key (%d bits) cannot be longer than the CA key (%d)", k.issuerBits, k.caBits)
	case k.iccBits > k.issuerBits:
		return cfg, usageErr("keys emv: the ICC key (%d bits) cannot be longer than the issuer key (%d)", k.iccBits, k.issuerBits)
	}
	return odatest.HierarchyConfig{
		RID: r, Index: idx[0], CABits: k.caBits, IssuerBits: k.issuerBits, ICCBits: k.iccBits, Exponent: k.exponent,
		CAExpiry: k.caExpiry, IssuerID: k.issuerID, IssuerExpiry: k.issuerExpiry, PAN: k.pan, ICCExpiry: k.iccExpiry,
	}, nil
}

// newHierarchy generates the keys (seconds for long ones) and gives up
// when ctx is done, before anything is written.
func newHierarchy(ctx context.Context, cfg odatest.HierarchyConfig) (*odatest.Hierarchy, error) {
	type result struct {
		h   *odatest.Hierarchy
		err error
	}
	done := make(chan result, 1)
	go func() {
		h, err := odatest.NewHierarchy(rand.Reader, cfg)
		done <- result{h, err}
	}()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-done:
		return r.h, r.err
	}
}
