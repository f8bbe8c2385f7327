package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/faregate/faregate/denylist"
	"github.com/spf13/cobra"
)

// newDenylistHeadCmd signs a head statement offline, for gates fed from a
// directory (dlsync.DirSource reads it as head.fgdh), optionally announcing
// the next signing key (docs/denylist.md, "Key rotation").
func newDenylistHeadCmd() *cobra.Command {
	var listPath, keyPath, nextPubPath, out, issued string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "head --list SNAPSHOT --key KEY --out head.fgdh [--next-pub NEXT.pub] [--ttl 15m]",
		Short: "Sign the head statement of a snapshot, optionally announcing the next key",
		Long: `Sign a head statement naming SNAPSHOT (which KEY must have signed) as the
current version, valid for --ttl from --issued (default now). Gates fed from
a directory read it as head.fgdh. With --next-pub the statement (format 2)
announces that public key as the next signing key: a gate that verifies it
trusts both keys from then on, and drops KEY once a statement signed by the
next key announces no other.`,
		Args: dlNoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := dlRequired(cmd, "list", "key", "out"); err != nil {
				return err
			}
			if ttl <= 0 {
				return usageErr("denylist head: --ttl must be positive")
			}
			at := time.Now()
			if issued != "" {
				t, err := time.Parse(time.RFC3339, issued)
				if err != nil {
					return usageErr("--issued: want RFC 3339 like 2026-11-23T04:00:00Z: %v", err)
				}
				at = t
			}
			ctx := cmd.Context()
			key, err := dlReadPrivateKey(ctx, keyPath)
			if err != nil {
				return err
			}
			l, err := dlReadSnapshotFile(ctx, "list", listPath, key.Public().(ed25519.PublicKey))
			if err != nil {
				return err
			}
			h := denylist.HeadOf(l, at, ttl)
			if nextPubPath != "" {
				next, err := dlReadPublicKey(ctx, nextPubPath)
				if err != nil {
					return err
				}
				if next.Equal(key.Public()) {
					return usageErr("denylist head: --next-pub is the public key of --key")
				}
				h.NextKey = next
			}
			b, err := denylist.SignHead(key, h)
			if err != nil {
				return usageErr("denylist head: %v", err)
			}
			if err := writeOutput(ctx, "--out", out, 0o644, func(w io.Writer) error {
				_, err := w.Write(b)
				return err
			}); err != nil {
				return err
			}
			msg := fmt.Sprintf("wrote %s: head of %s, expires %s", out, dlSummary(l), h.Expires.UTC().Format(time.RFC3339))
			if h.NextKey != nil {
				msg += ", announces next key " + dlKeyFingerprint(h.NextKey)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), msg)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&listPath, "list", "", "the current snapshot")
	f.StringVar(&keyPath, "key", "", "signing key (denylist.key) that signed the snapshot")
	f.StringVar(&nextPubPath, "next-pub", "", "announce this public key as the next signing key")
	f.StringVar(&out, "out", "", "head statement file to write (head.fgdh)")
	f.StringVar(&issued, "issued", "", "issue time, RFC 3339 (default now)")
	f.DurationVar(&ttl, "ttl", 15*time.Minute, "how long the statement vouches for the snapshot")
	return cmd
}

// dlKeyFingerprint names a public key: SHA-256 of its 32 bytes, the first
// 8 bytes in hex.
func dlKeyFingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "sha256:" + hex.EncodeToString(sum[:8])
}
