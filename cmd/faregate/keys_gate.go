package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/faregate/faregate/tap"
)

// keyFile is one file a keys subcommand writes.
type keyFile struct {
	name string
	data []byte
	perm os.FileMode
}

// writeKeyFiles writes files into dir, refusing to replace any of them.
func writeKeyFiles(cmd *cobra.Command, what, dir string, files ...keyFile) error {
	if dir == "" {
		return usageErr("keys %s: --out DIR is required", what)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("keys %s: %w", what, err)
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f.name)); err == nil {
			return usageErr("keys %s: %s already exists; choose another --out or move the old key away first", what, filepath.Join(dir, f.name))
		}
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := dlWriteNewFile(cmd.Context(), p, f.data, f.perm); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", p); err != nil {
			return err
		}
	}
	return nil
}

func newKeysGateCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "gate --out DIR",
		Short: "Write a gate's upload signing key pair (gate.key, gate.pub)",
		Long: `Write a new Ed25519 key pair for a gate:

  DIR/gate.key  private key, PEM PKCS #8, mode 0600: stays on the gate (--gate-key)
  DIR/gate.pub  public key, PEM PKIX: registered at the back office

Existing files are never overwritten.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := tap.GenerateGateKey(nil)
			if err != nil {
				return err
			}
			kp, err := tap.MarshalGateKey(key)
			if err != nil {
				return err
			}
			pp, err := tap.MarshalGatePublicKey(key.Public().(ed25519.PublicKey))
			if err != nil {
				return err
			}
			return writeKeyFiles(cmd, "gate", out, keyFile{"gate.key", kp, 0o600}, keyFile{"gate.pub", pp, 0o644})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write gate.key and gate.pub into")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })
	return cmd
}

func newKeysVaultCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "vault --out DIR",
		Short: "Write the payment vault's HPKE key pair (vault.key, vault.pub)",
		Long: `Write a new X25519 key pair for the back office's payment vault:

  DIR/vault.key  private key, PEM PKCS #8, mode 0600: only the payment vault holds it
  DIR/vault.pub  public key, PEM PKIX: installed on every gate (--vault-pub)

Gates seal the card data the acquirer needs to vault.pub (HPKE, docs/api.md)
and cannot open it again. Existing files are never overwritten.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := tap.GenerateVaultKey(nil)
			if err != nil {
				return err
			}
			kp, err := tap.MarshalVaultKey(key)
			if err != nil {
				return err
			}
			pp, err := tap.MarshalVaultPublicKey(key.PublicKey())
			if err != nil {
				return err
			}
			return writeKeyFiles(cmd, "vault", out, keyFile{"vault.key", kp, 0o600}, keyFile{"vault.pub", pp, 0o644})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write vault.key and vault.pub into")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })
	return cmd
}

func newKeysTokenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "token --out DIR",
		Short: "Write the agency's rider-token key (token.key)",
		Long: `Write a new 32-byte agency token key: rider tokens are HMAC-SHA-256 of the
PAN and PAN sequence number under it (docs/architecture.md).

  DIR/token.key  64 hex digits and a newline, mode 0600: on every gate
                 (--token-key) and in the back office

There is no standard file form for an HMAC key, hence hex. Existing files
are never overwritten; a new key changes every rider's token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k := make([]byte, 32)
			if _, err := rand.Read(k); err != nil {
				return err
			}
			return writeKeyFiles(cmd, "token", out, keyFile{"token.key", []byte(hex.EncodeToString(k) + "\n"), 0o600})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write token.key into")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })
	return cmd
}
