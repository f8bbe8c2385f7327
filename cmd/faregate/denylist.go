package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/faregate/faregate/denylist"
	"github.com/spf13/cobra"
)

// newDenylistCmd groups the deny-list file tools. Their flags, output and
// exit codes are a contract scripted by operations tools (docs/cli.md).
func newDenylistCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "denylist",
		Short: "Build, diff, apply, inspect, check and head signed deny-list files",
		Long: `Tools for the deny list's signed files (format: docs/denylist.md).

  build    tokens file → signed snapshot
  diff     two snapshots → signed delta
  apply    snapshot + delta → next snapshot, verified
  inspect  describe a snapshot or delta
  head     sign a head statement, optionally announcing the next key
  check    look tokens up in a snapshot

Exit status 2 means unusable input: a missing flag, an unreadable file, or a
file that fails verification.`,
		Args: dlNoArgs,
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageErr("%v", err)
	})
	cmd.AddCommand(
		newDenylistBuildCmd(),
		newDenylistDiffCmd(),
		newDenylistApplyCmd(),
		newDenylistInspectCmd(),
		newDenylistCheckCmd(),
		newDenylistHeadCmd(),
	)
	return cmd
}

// dlNoArgs is cobra.NoArgs with exit status 2.
func dlNoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErr("%s: unexpected argument %q", cmd.CommandPath(), args[0])
	}
	return nil
}

// dlRequired returns a usage error naming the first empty flag.
func dlRequired(cmd *cobra.Command, flags ...string) error {
	for _, name := range flags {
		if f := cmd.Flags().Lookup(name); f != nil && f.Value.String() == "" {
			return usageErr("%s: --%s is required (see --help)", cmd.CommandPath(), name)
		}
	}
	return nil
}

// maxListFile is the largest deny-list file the format allows.
const maxListFile = denylist.HeaderSize + 8*denylist.MaxEntries + 2*denylist.SignatureSize

// maxVersion is the largest version build takes without
// --allow-huge-version: a version a second for 8.9 million years. Beyond
// it a typing slip (or 2^64 − 1) would leave no room for the versions that
// follow, and every later list would look like a replay to the gates.
const maxVersion = 1 << 48

func dlReadPublicKey(ctx context.Context, path string) (ed25519.PublicKey, error) {
	b, err := readInput(ctx, "--pub", path, maxKeyFile)
	if err != nil {
		return nil, err
	}
	pub, err := denylist.ParsePublicKey(b)
	if err != nil {
		return nil, usageErr("--pub %s: %v; want the denylist.pub written by 'faregate keys denylist'", path, err)
	}
	return pub, nil
}

func dlReadPrivateKey(ctx context.Context, path string) (ed25519.PrivateKey, error) {
	b, err := readInput(ctx, "--key", path, maxKeyFile)
	if err != nil {
		return nil, err
	}
	key, err := denylist.ParsePrivateKey(b)
	if err != nil {
		return nil, usageErr("--key %s: %v; want the denylist.key written by 'faregate keys denylist'", path, err)
	}
	return key, nil
}

// dlHint tells the operator what to do about a refused file.
func dlHint(err error) string {
	switch {
	case errors.Is(err, denylist.ErrSignature):
		return "the file was not signed by this key, or was altered: check the key, fetch the file again"
	case errors.Is(err, denylist.ErrTruncated):
		return "the file is incomplete: fetch or copy it again"
	case errors.Is(err, denylist.ErrMalformed):
		return "not a deny-list file, or damaged: fetch or copy it again"
	case errors.Is(err, denylist.ErrListID):
		return "the files belong to different lists: check which list this gate or tool is for"
	case errors.Is(err, denylist.ErrGap):
		return "apply the deltas in between first, or use a full snapshot"
	case errors.Is(err, denylist.ErrReplay):
		return "the list is already at that version or newer: nothing to apply"
	case errors.Is(err, denylist.ErrInconsistent):
		return "the list has diverged from the back office's: replace it with a full snapshot"
	case errors.Is(err, denylist.ErrKind):
		return "pass a snapshot to --list/--from/--to and a delta to --delta"
	}
	return ""
}

// dlRefused turns a verification failure into a usage error with a hint.
func dlRefused(what string, err error) error {
	if h := dlHint(err); h != "" {
		return usageErr("%s: %w; %s", what, err, h)
	}
	return usageErr("%s: %w", what, err)
}

// dlReadSnapshotFile reads and verifies a snapshot.
func dlReadSnapshotFile(ctx context.Context, flag, path string, pub ed25519.PublicKey) (*denylist.List, error) {
	f, err := openInput(ctx, "--"+flag, path, maxListFile, nil)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l, err := denylist.ReadSnapshot(bufio.NewReaderSize(f, 1<<20), pub)
	if err != nil {
		return nil, dlInputErr(ctx, path, err)
	}
	return l, nil
}

// dlInputErr is inputErr with the deny-list hints.
func dlInputErr(ctx context.Context, path string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if _, ok := errors.AsType[*exitError](err); ok {
		return err
	}
	return dlRefused(path, err)
}

func dlSummary(l *denylist.List) string {
	return fmt.Sprintf("list %s, version %d, %d entries", l.ID(), l.Version(), l.Len())
}

func newDenylistBuildCmd() *cobra.Command {
	var tokensPath, keyPath, out, listID, created string
	var version uint64
	var allowEmpty, allowHugeVersion bool
	cmd := &cobra.Command{
		Use:   "build --tokens FILE --key KEY --version N --out SNAPSHOT",
		Short: "Build a signed snapshot from a file of tokens",
		Long: `Build a signed snapshot of version N from FILE, one token per line as 32 hex
digits (upper or lower case; blank lines and lines starting with # are
ignored; "-" reads standard input).`,
		Args: dlNoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := dlRequired(cmd, "tokens", "key", "out"); err != nil {
				return err
			}
			if version == 0 {
				return usageErr("denylist build: --version N is required, N >= 1")
			}
			if version > maxVersion && !allowHugeVersion {
				return usageErr("denylist build: --version %d leaves no room for later versions (gates would take every one after it as a replay); use at most %d, or --allow-huge-version", version, uint64(maxVersion))
			}
			id := denylist.ListID(listID)
			if err := id.Valid(); err != nil {
				return usageErr("--list-id: %v", err)
			}
			at := time.Now()
			if created != "" {
				t, err := time.Parse(time.RFC3339, created)
				if err != nil {
					return usageErr("--created: want RFC 3339 like 2026-11-23T04:00:00Z: %v", err)
				}
				at = t
			}
			ctx := cmd.Context()
			key, err := dlReadPrivateKey(ctx, keyPath)
			if err != nil {
				return err
			}
			tokens, err := dlReadTokens(ctx, tokensPath, cmd.InOrStdin(), allowEmpty)
			if err != nil {
				return err
			}
			l, err := denylist.Sign(key, id, version, at, denylist.NewSetOfTokens(tokens))
			if err != nil {
				return usageErr("denylist build: %v", err)
			}
			err = writeOutput(ctx, "--out", out, 0o644, func(w io.Writer) error {
				_, err := l.WriteTo(w)
				return err
			})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s\n", out, dlSummary(l))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&tokensPath, "tokens", "", "file of tokens, one per line (- for standard input)")
	f.StringVar(&keyPath, "key", "", "signing key (denylist.key)")
	f.Uint64Var(&version, "version", 0, "version of the snapshot, >= 1")
	f.StringVar(&out, "out", "", "snapshot file to write")
	f.StringVar(&listID, "list-id", string(denylist.DefaultListID), "list id, [a-z0-9._-]{1,16}")
	f.StringVar(&created, "created", "", "creation time, RFC 3339 (default now)")
	f.BoolVar(&allowEmpty, "allow-empty", false, "publish a list that denies nobody when the tokens file holds no token")
	f.BoolVar(&allowHugeVersion, "allow-huge-version", false, fmt.Sprintf("take a --version above %d, leaving little or no room for later versions", uint64(maxVersion)))
	return cmd
}

// dlReadTokens reads the tokens file of build ("-": stdin), refusing an
// empty one unless allowEmpty.
func dlReadTokens(ctx context.Context, path string, stdin io.Reader, allowEmpty bool) ([]denylist.Token, error) {
	in, err := openInput(ctx, "--tokens", path, maxTokensFile, stdin)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	tokens, err := denylist.ReadTokens(in)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if _, ok := errors.AsType[*exitError](err); ok {
			return nil, err
		}
		return nil, usageErr("--tokens %s: %v; fix the line: one token of 32 hex digits per line", path, err)
	}
	if len(tokens) == 0 && !allowEmpty {
		return nil, usageErr("denylist build: --tokens %s holds no token: the list would deny nobody (a failed export?); pass --allow-empty to publish an empty list on purpose", path)
	}
	return tokens, nil
}

func newDenylistDiffCmd() *cobra.Command {
	var from, to, keyPath, out string
	cmd := &cobra.Command{
		Use:   "diff --from OLD --to NEW --key KEY --out DELTA",
		Short: "Write the signed delta between two snapshots",
		Long: `Write the signed delta that turns snapshot OLD into snapshot NEW. Both must
be versions of the same list, signed with KEY, OLD older than NEW.`,
		Args: dlNoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := dlRequired(cmd, "from", "to", "key", "out"); err != nil {
				return err
			}
			key, err := dlReadPrivateKey(cmd.Context(), keyPath)
			if err != nil {
				return err
			}
			pub := key.Public().(ed25519.PublicKey)
			old, err := dlReadSnapshotFile(cmd.Context(), "from", from, pub)
			if err != nil {
				return err
			}
			next, err := dlReadSnapshotFile(cmd.Context(), "to", to, pub)
			if err != nil {
				return err
			}
			d, err := denylist.Diff(old, next)
			if err != nil {
				return usageErr("denylist diff: %v; pass the older snapshot to --from", err)
			}
			b, err := d.Sign(key)
			if err != nil {
				return err
			}
			err = writeOutput(cmd.Context(), "--out", out, 0o644, func(w io.Writer) error {
				_, err := w.Write(b)
				return err
			})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: list %s, version %d → %d, %d added, %d removed\n",
				out, d.ListID, d.From, d.To, len(d.Add), len(d.Remove))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "older snapshot")
	f.StringVar(&to, "to", "", "newer snapshot")
	f.StringVar(&keyPath, "key", "", "signing key (denylist.key)")
	f.StringVar(&out, "out", "", "delta file to write")
	return cmd
}

func newDenylistApplyCmd() *cobra.Command {
	var listPath, deltaPath, pubPath, out string
	cmd := &cobra.Command{
		Use:   "apply --list CURRENT --delta DELTA --pub PUB --out NEW",
		Short: "Apply a delta to a snapshot, writing the next snapshot",
		Long: `Verify CURRENT and DELTA with PUB, check that DELTA starts at CURRENT's
version, apply it and write NEW. NEW is verified against the back office's
signature for that version (carried in the delta), so it is byte for byte the
snapshot the back office would serve.`,
		Args: dlNoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := dlRequired(cmd, "list", "delta", "pub", "out"); err != nil {
				return err
			}
			ctx := cmd.Context()
			pub, err := dlReadPublicKey(ctx, pubPath)
			if err != nil {
				return err
			}
			cur, err := dlReadSnapshotFile(ctx, "list", listPath, pub)
			if err != nil {
				return err
			}
			f, err := openInput(ctx, "--delta", deltaPath, maxListFile, nil)
			if err != nil {
				return err
			}
			d, err := denylist.ReadDelta(bufio.NewReader(f), pub)
			f.Close()
			if err != nil {
				return dlInputErr(ctx, deltaPath, err)
			}
			next, err := cur.Apply(d)
			if err != nil {
				return dlRefused("denylist apply", err)
			}
			err = writeOutput(ctx, "--out", out, 0o644, func(w io.Writer) error {
				return next.WriteVerified(w, pub)
			})
			if errors.Is(err, denylist.ErrInconsistent) {
				return dlRefused("denylist apply", err)
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s\n", out, dlSummary(next))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&listPath, "list", "", "current snapshot")
	f.StringVar(&deltaPath, "delta", "", "delta to apply")
	f.StringVar(&pubPath, "pub", "", "back office public key (denylist.pub)")
	f.StringVar(&out, "out", "", "snapshot file to write")
	return cmd
}

// dlInspectReport is the output of denylist inspect (--json field names are
// part of the contract).
type dlInspectReport struct {
	File          string `json:"file"`
	Kind          string `json:"kind"`
	FormatVersion int    `json:"format_version"`
	ListID        string `json:"list_id"`
	From          uint64 `json:"from,omitempty"`
	Version       uint64 `json:"version"`
	Created       string `json:"created"`
	Entries       uint64 `json:"entries"`
	Adds          *int64 `json:"adds,omitempty"`
	Removes       *int64 `json:"removes,omitempty"`
	Size          int64  `json:"size"`
	Signature     string `json:"signature"` // valid, invalid, unchecked
}

func newDenylistInspectCmd() *cobra.Command {
	var pubPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Describe a snapshot or delta: version, count, size, signature status",
		Long: `Describe a snapshot or delta file after checking its structure. With --pub
the signature is verified too ("valid" or "invalid"); without, it is reported
as "unchecked". Exit status 2 when the file is malformed or its signature is
invalid (the description is still printed in the second case).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErr("denylist inspect: want exactly one FILE")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var pub ed25519.PublicKey
			if pubPath != "" {
				var err error
				if pub, err = dlReadPublicKey(cmd.Context(), pubPath); err != nil {
					return err
				}
			}
			path := args[0]
			f, err := openInput(cmd.Context(), "denylist inspect", path, maxListFile, nil)
			if err != nil {
				return err
			}
			defer f.Close()
			info, err := denylist.Inspect(bufio.NewReaderSize(f, 1<<20))
			if err != nil {
				return dlInputErr(cmd.Context(), path, err)
			}
			rep := dlInspectReport{
				File: path, Kind: info.Kind.String(), FormatVersion: denylist.FormatVersion,
				ListID: string(info.ListID), From: info.From, Version: info.To,
				Created: info.Created.Format(time.RFC3339Nano), Entries: info.Count,
				Size: info.Size, Signature: "unchecked",
			}
			if info.Kind == denylist.KindDelta {
				a, r := int64(info.Adds), int64(info.Removes)
				rep.Adds, rep.Removes = &a, &r
			}
			var verr error
			if pub != nil {
				rep.Signature = "valid"
				if verr = info.Verify(pub); verr != nil {
					rep.Signature = "invalid"
				}
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				err = enc.Encode(rep)
			} else {
				err = dlPrintInspect(w, &rep)
			}
			if err != nil {
				return err
			}
			if verr != nil {
				return dlRefused(path, verr)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pubPath, "pub", "", "verify the signature with this public key (denylist.pub)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func dlPrintInspect(w io.Writer, r *dlInspectReport) error {
	version := strconv.FormatUint(r.Version, 10)
	if r.Kind == "delta" {
		version = fmt.Sprintf("%d → %d", r.From, r.Version)
	}
	lines := [][2]string{
		{"file", r.File},
		{"kind", r.Kind},
		{"format", strconv.Itoa(r.FormatVersion)},
		{"list", r.ListID},
		{"version", version},
		{"created", r.Created},
		{"entries", strconv.FormatUint(r.Entries, 10)},
	}
	if r.Adds != nil {
		lines = append(lines, [2]string{"adds", strconv.FormatInt(*r.Adds, 10)}, [2]string{"removes", strconv.FormatInt(*r.Removes, 10)})
	}
	lines = append(lines, [2]string{"size", fmt.Sprintf("%d bytes", r.Size)}, [2]string{"signature", r.Signature})
	for _, l := range lines {
		if _, err := fmt.Fprintf(w, "%-10s %s\n", l[0]+":", l[1]); err != nil {
			return err
		}
	}
	return nil
}

func newDenylistCheckCmd() *cobra.Command {
	var listPath, pubPath string
	cmd := &cobra.Command{
		Use:   "check --list SNAPSHOT --pub PUB TOKEN…",
		Short: "Look tokens up in a verified snapshot",
		Long: `Verify SNAPSHOT with PUB, then print one line per TOKEN, "TOKEN denied" or
"TOKEN allowed", with the token as given (upper or lower case hex). Exit
status 0; 2 when the snapshot fails verification or a token is not 32 hex
digits (nothing is printed then).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("denylist check: give at least one TOKEN")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := dlRequired(cmd, "list", "pub"); err != nil {
				return err
			}
			tokens := make([]denylist.Token, len(args))
			for i, a := range args {
				t, err := denylist.ParseToken(a)
				if err != nil {
					return usageErr("denylist check: %q: %v", a, err)
				}
				tokens[i] = t
			}
			pub, err := dlReadPublicKey(cmd.Context(), pubPath)
			if err != nil {
				return err
			}
			l, err := dlReadSnapshotFile(cmd.Context(), "list", listPath, pub)
			if err != nil {
				return err
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			for i, t := range tokens {
				verdict := "allowed"
				if l.Contains(t) {
					verdict = "denied"
				}
				fmt.Fprintf(w, "%s %s\n", args[i], verdict)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&listPath, "list", "", "snapshot to look up")
	cmd.Flags().StringVar(&pubPath, "pub", "", "back office public key (denylist.pub)")
	return cmd
}
