package main

import (
	"context"
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
				return fmt.Errorf("keys denylist: %w", err)
			}
			keyPath, pubPath := filepath.Join(out, "denylist.key"), filepath.Join(out, "denylist.pub")
			for _, p := range []string{keyPath, pubPath} {
				if _, err := os.Stat(p); err == nil {
					return usageErr("keys denylist: %s already exists; choose another --out or move the old key away first", p)
				}
			}
			if err := dlWriteNewFile(cmd.Context(), keyPath, keyPEM, 0o600); err != nil {
				return err
			}
			if err := dlWriteNewFile(cmd.Context(), pubPath, pubPEM, 0o644); err != nil {
				os.Remove(keyPath) // no half a key pair
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
