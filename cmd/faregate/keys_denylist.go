package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/internal/atomicfile"
	"github.com/spf13/cobra"
)

// newKeysDenylistCmd writes the back office's deny-list signing key pair.
func newKeysDenylistCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "denylist --out DIR",
		Short: "Write a deny-list signing key pair (denylist.key, denylist.pub)",
		Long: `Write a new Ed25519 key pair for signing deny lists:

  DIR/denylist.key  private key, PEM PKCS #8, mode 0600: stays in the back office
  DIR/denylist.pub  public key, PEM PKIX: installed on every gate

Existing files are never overwritten.`,
		Args: dlNoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErr("keys denylist: --out DIR is required")
			}
			keyPath, pubPath, _, err := writeEd25519Pair(cmd.Context(), "keys denylist", out, "denylist")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (keep it secret) and %s\n", keyPath, pubPath)
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write denylist.key and denylist.pub into")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })
	return cmd
}

// writeEd25519Pair writes a new Ed25519 key pair as DIR/NAME.key (PEM
// PKCS #8, 0600) and DIR/NAME.pub (PEM PKIX), never over existing files and
// never half a pair. The deny-list and QR issuing keys share this format.
func writeEd25519Pair(ctx context.Context, what, dir, name string) (keyPath, pubPath string, pub ed25519.PublicKey, err error) {
	pub, key, err := denylist.GenerateKey(nil)
	if err != nil {
		return "", "", nil, err
	}
	keyPEM, err := denylist.MarshalPrivateKey(key)
	if err != nil {
		return "", "", nil, err
	}
	pubPEM, err := denylist.MarshalPublicKey(pub)
	if err != nil {
		return "", "", nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", nil, fmt.Errorf("%s: %w", what, err)
	}
	keyPath, pubPath = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Stat(p); err == nil {
			return "", "", nil, usageErr("%s: %s already exists; choose another --out or move the old key away first", what, p)
		}
	}
	if err := dlWriteNewFile(ctx, keyPath, keyPEM, 0o600); err != nil {
		return "", "", nil, err
	}
	if err := dlWriteNewFile(ctx, pubPath, pubPEM, 0o644); err != nil {
		os.Remove(keyPath) // no half a key pair
		return "", "", nil, err
	}
	return keyPath, pubPath, pub, nil
}

// dlWriteNewFile creates path with mode perm, whole or not at all,
// refusing to replace anything, and makes it durable.
func dlWriteNewFile(ctx context.Context, path string, b []byte, perm fs.FileMode) error {
	err := atomicfile.Write(ctx, path, perm, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}, atomicfile.Options{NoReplace: true})
	if errors.Is(err, fs.ErrExist) {
		return usageErr("%s already exists; choose another --out or move the old key away first", path)
	}
	return err
}
