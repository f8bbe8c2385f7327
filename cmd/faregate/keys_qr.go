package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/faregate/faregate/denylist"
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
			pub, key, err := denylist.GenerateKey(nil)
			if err != nil {
				return err
			}
			keyPEM, err := denylist.MarshalPrivateKey(key)
			if err != nil {
				return err
			}
			pubPEM, err := denylist.MarshalPublicKey(pub)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("keys qr: %w", err)
			}
			keyPath, pubPath := filepath.Join(out, "qr-issuer.key"), filepath.Join(out, "qr-issuer.pub")
			for _, p := range []string{keyPath, pubPath} {
				if _, err := os.Stat(p); err == nil {
					return usageErr("keys qr: %s already exists; choose another --out or move the old key away first", p)
				}
			}
			if err := dlWriteNewFile(cmd.Context(), keyPath, keyPEM, 0o600); err != nil {
				return err
			}
			if err := dlWriteNewFile(cmd.Context(), pubPath, pubPEM, 0o644); err != nil {
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
