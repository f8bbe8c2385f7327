package main

import (
	"fmt"

	"github.com/faregate/faregate/qr"
	"github.com/spf13/cobra"
)

// newKeysQRCmd writes the back office's QR credential issuing key pair, in
// the deny-list keys' file format (PEM PKCS #8 / PKIX Ed25519).
func newKeysQRCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "qr --out DIR",
		Short: "Write a QR credential issuing key pair (qr-issuer.key, qr-issuer.pub)",
		Long: `Write a new Ed25519 key pair for signing riders' QR device credentials:

  DIR/qr-issuer.key  private key, PEM PKCS #8, mode 0600: stays in the back office
  DIR/qr-issuer.pub  public key, PEM PKIX: installed on every gate

The key id that credentials carry is derived from the public key (printed).
Existing files are never overwritten.`,
		Args: dlNoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErr("keys qr: --out DIR is required")
			}
			keyPath, pubPath, pub, err := writeEd25519Pair(cmd.Context(), "keys qr", out, "qr-issuer")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (keep it secret) and %s; key id %s\n", keyPath, pubPath, qr.KeyIDOf(pub))
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write qr-issuer.key and qr-issuer.pub into")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })
	return cmd
}
