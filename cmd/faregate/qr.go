package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/qr"
	"github.com/faregate/faregate/rider"
	qrcode "github.com/skip2/go-qrcode"
	"github.com/spf13/cobra"
)

// newQRCmd groups the offline QR credential tools (docs/qr.md): the back
// office's issue, the app's show and the gate's offline verify.
func newQRCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "qr",
		Short: "Issue, show and verify offline QR fare credentials",
		Long: `Offline QR credentials (docs/qr.md):

  issue   back office: certify a new device key for a rider token → device file
  show    app: make the next code from a device file (terminal, text, PNG)
  verify  gate: check a code offline with the issuer's public key(s), print JSON
  revoke  back office: revoke a device key, deny-list its rider token

Make the issuing key with 'faregate keys qr'.`,
		Args: dlNoArgs,
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })
	cmd.AddCommand(newQRIssueCmd(), newQRShowCmd(), newQRVerifyCmd(), newQRRevokeCmd())
	return cmd
}

// qrDeviceFile is what 'qr issue' writes and 'qr show' reads and updates:
// what a rider's app keeps. It holds the device's private key: mode 0600.
type qrDeviceFile struct {
	Credential []byte `json:"credential"` // qr.CredentialSize bytes, base64
	DeviceKey  []byte `json:"device_key"` // Ed25519 seed, base64
	Counter    uint32 `json:"counter"`    // last counter used
}

// qrIssued is what 'qr issue' prints: the back office's record of the
// credential (no secret in it).
type qrIssued struct {
	Token     string `json:"token"`
	Device    string `json:"device"` // public key, hex
	KeyID     string `json:"key_id"`
	NotBefore string `json:"not_before"`
	NotAfter  string `json:"not_after"`
	Category  string `json:"category"`
}

// signOffline signs cred with the issuing key in keyPath; nothing records
// the credential.
func signOffline(ctx context.Context, keyPath string, cred *qr.Credential) error {
	key, _, err := qrReadKey(ctx, "key", keyPath, true)
	if err != nil {
		return err
	}
	if err := cred.Sign(key); err != nil {
		return usageErr("%w", err)
	}
	return nil
}

// writeDeviceFile writes the app's device file (never over an existing
// one) and prints the credential's public record.
func writeDeviceFile(cmd *cobra.Command, out string, cred *qr.Credential, devKey ed25519.PrivateKey) error {
	cb, err := cred.MarshalBinary()
	if err != nil {
		return err
	}
	f, err := json.MarshalIndent(qrDeviceFile{Credential: cb, DeviceKey: devKey.Seed()}, "", "  ")
	if err != nil {
		return err
	}
	if err := dlWriteNewFile(cmd.Context(), out, append(f, '\n'), 0o600); err != nil {
		return err
	}
	return printJSON(cmd.OutOrStdout(), qrIssued{
		Token: cred.Token.String(), Device: hex.EncodeToString(cred.Device[:]), KeyID: cred.KeyID.String(),
		NotBefore: cred.NotBefore.Format(time.RFC3339), NotAfter: cred.NotAfter.Format(time.RFC3339),
		Category: cred.Category.String(),
	})
}

func newQRIssueCmd() *cobra.Command {
	var keyPath, token, out, category, from, backendURL, operatorPath string
	var valid time.Duration
	cmd := &cobra.Command{
		Use:   "issue (--key FILE | --backend URL --operator-token FILE) --token HEX --out FILE",
		Short: "Certify a new device key for a rider token (writes a device file)",
		Long: `Make a device key pair and a credential for it signed with the back office's
issuing key: the device file an app keeps (JSON, mode 0600, holds the
device's private key; never overwritten). Prints the credential's public
record as JSON.

Offline, --key signs with qr-issuer.key ('faregate keys qr') and nothing
records the credential. With --backend the running back office signs it
(POST /v1/qr/credentials, docs/api.md): the token must be an enrolled rider's
(card data in the vault), the back office records the device key, and
uploaded codes made with it are confirmed. The device's private key never
leaves this machine.`,
		Args: dlNoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			required := []string{"key", "token", "out"}
			if backendURL != "" {
				if keyPath != "" {
					return usageErr("qr issue: give --key or --backend, not both")
				}
				required = required[1:]
			}
			if err := dlRequired(cmd, required...); err != nil {
				return err
			}
			tok, err := rider.ParseToken(token)
			if err != nil {
				return usageErr("--token: %v", err)
			}
			cat, err := qr.ParseCategory(category)
			if err != nil {
				return usageErr("--category: %v", err)
			}
			nb := time.Now().Truncate(time.Second)
			if from != "" {
				if nb, err = time.Parse(time.RFC3339, from); err != nil {
					return usageErr("--from: want RFC 3339 (2026-11-23T08:00:00Z): %v", err)
				}
			}
			if valid <= 0 {
				return usageErr("--valid must be positive")
			}
			devPub, devKey, err := ed25519.GenerateKey(nil)
			if err != nil {
				return err
			}
			cred := &qr.Credential{Token: tok, Device: qr.DeviceKey(devPub), NotBefore: nb, NotAfter: nb.Add(valid - time.Second), Category: cat}
			if backendURL != "" {
				req := backend.QRIssueRequest{Token: tok, Device: hex.EncodeToString(devPub), Valid: valid.String(), Category: cat.String()}
				if from != "" {
					req.NotBefore = &nb
				}
				var op string
				if op, err = readOperatorToken("qr issue", operatorPath); err == nil {
					cred, err = issueThroughBackend(cmd.Context(), backendURL, op, req)
				}
			} else {
				err = signOffline(cmd.Context(), keyPath, cred)
			}
			if err != nil {
				return err
			}
			return writeDeviceFile(cmd, out, cred, devKey)
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "the back office's issuing key (qr-issuer.key): issue offline")
	cmd.Flags().StringVar(&backendURL, "backend", "", "issue through the back office at this URL (http://host:port) instead of --key")
	cmd.Flags().StringVar(&operatorPath, "operator-token", "", "file holding the operator bearer token (with --backend)")
	cmd.Flags().StringVar(&token, "token", "", "the rider token (32 hex digits)")
	cmd.Flags().StringVar(&out, "out", "", "device file to write")
	cmd.Flags().StringVar(&category, "category", "adult", "rider category: adult, child, senior, reduced")
	cmd.Flags().StringVar(&from, "from", "", "start of validity, RFC 3339 (default now)")
	cmd.Flags().DurationVar(&valid, "valid", 30*24*time.Hour, "validity period")
	return cmd
}

func readDeviceFile(ctx context.Context, path string) (*qrDeviceFile, *qr.Device, error) {
	b, err := readInput(ctx, "--device", path, maxJSONInput)
	if err != nil {
		return nil, nil, err
	}
	var f qrDeviceFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, nil, usageErr("--device %s: not a device file from 'faregate qr issue': %v", path, err)
	}
	cred, err := qr.ParseCredential(f.Credential)
	if err != nil || len(f.DeviceKey) != ed25519.SeedSize {
		return nil, nil, usageErr("--device %s: not a device file from 'faregate qr issue'", path)
	}
	return &f, &qr.Device{Credential: *cred, Key: ed25519.NewKeyFromSeed(f.DeviceKey)}, nil
}

// nextCode makes the device's next code and saves its counter in the
// device file before the code exists anywhere else.
func nextCode(ctx context.Context, path string, f *qrDeviceFile, dev *qr.Device, now time.Time, ch []byte) ([]byte, error) {
	if f.Counter == ^uint32(0) {
		return nil, fmt.Errorf("qr show: the device's counter is used up; issue a new device key")
	}
	f.Counter++
	payload, err := dev.Code(now, f.Counter, ch)
	if err != nil {
		return nil, usageErr("%w", err)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeOutput(ctx, "--device", path, 0o600, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	}); err != nil {
		return nil, fmt.Errorf("qr show: save counter: %w", err)
	}
	return payload, nil
}

func newQRShowCmd() *cobra.Command {
	var device, png, at, challenge string
	var textOnly, inverse bool
	var size int
	cmd := &cobra.Command{
		Use:   "show --device FILE [--png FILE] [--text]",
		Short: "Make the next code: print it in the terminal and as text, write a PNG",
		Long: `Make the device's next code (the counter in the device file goes up by one
and is saved before the code is shown) with the current time, and print it
as a QR code in the terminal (drawn for a dark background; --inverse for a
light one) followed by its text. --png also writes it as a
PNG image; --text prints the text alone (for scripts).`,
		Args: dlNoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := dlRequired(cmd, "device"); err != nil {
				return err
			}
			f, dev, err := readDeviceFile(cmd.Context(), device)
			if err != nil {
				return err
			}
			now := time.Now()
			if at != "" {
				if now, err = time.Parse(time.RFC3339, at); err != nil {
					return usageErr("--at: want RFC 3339: %v", err)
				}
			}
			ch, err := hex.DecodeString(challenge)
			if err != nil || len(ch) > qr.MaxChallenge {
				return usageErr("--challenge: want at most %d bytes in hex", qr.MaxChallenge)
			}
			payload, err := nextCode(cmd.Context(), device, f, dev, now, ch)
			if err != nil {
				return err
			}
			text := qr.Text(payload)
			code, err := qrcode.New(text, qrcode.Medium)
			if err != nil {
				return fmt.Errorf("qr show: %w", err)
			}
			if png != "" {
				img, err := code.PNG(size)
				if err != nil {
					return fmt.Errorf("qr show: %w", err)
				}
				if err := writeOutput(cmd.Context(), "--png", png, 0o644, func(w io.Writer) error {
					_, err := w.Write(img)
					return err
				}); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			if !textOnly {
				fmt.Fprint(w, code.ToSmallString(inverse))
				fmt.Fprintf(w, "QR version %d-M, counter %d, %s\n", code.VersionNumber, f.Counter, now.UTC().Format(time.RFC3339))
			}
			_, err = fmt.Fprintln(w, text)
			return err
		},
	}
	cmd.Flags().StringVar(&device, "device", "", "device file from 'faregate qr issue' (its counter is updated)")
	cmd.Flags().StringVar(&png, "png", "", "also write the code as a PNG image to FILE")
	cmd.Flags().IntVar(&size, "size", 512, "PNG width and height in pixels")
	cmd.Flags().BoolVar(&textOnly, "text", false, "print only the code's text")
	cmd.Flags().BoolVar(&inverse, "inverse", false, "draw for a terminal with a light background (default: dark)")
	cmd.Flags().StringVar(&at, "at", "", "code time, RFC 3339 (default now; for tests)")
	cmd.Flags().StringVar(&challenge, "challenge", "", "the gate's challenge, hex")
	return cmd
}

// qrVerifyOutput is the contract of 'qr verify' (docs/cli.md).
type qrVerifyOutput struct {
	OK      bool      `json:"ok"`
	Reason  qr.Reason `json:"reason"`
	Token   string    `json:"token"`
	Time    string    `json:"time"`
	Counter uint32    `json:"counter"`
}

// qrVerifyFlags are what `qr verify` checks a code against: the gate's
// trust, clock, window, challenge and deny list.
type qrVerifyFlags struct {
	pubs                                      []string
	payload, at, challenge, denyPath, denyPub string
	window                                    time.Duration
}

func newQRVerifyCmd() *cobra.Command {
	var f qrVerifyFlags
	cmd := &cobra.Command{
		Use:   "verify --pub FILE [--payload TEXT]",
		Short: "Check a code offline as a gate does; print JSON",
		Long: `Check one code offline as a gate does (issuer key and signature, device
signature, validity, ±window around the clock, deny list) and print
{"ok","reason","token","time","counter"}. The code is the text a scanner
reads ("FQ:…"), from --payload or the first line of standard input.
Exit 0 when accepted, 1 when refused (reason says why), 2 when the input is
unusable (no key, unreadable file).`,
		Args: dlNoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g, ch, err := f.gate(cmd.Context())
			if err != nil {
				return err
			}
			text := f.payload
			if text == "" {
				if text, err = readCodeLine(cmd.Context(), cmd.InOrStdin()); err != nil {
					return err
				}
			}
			c, err := qr.Parse(text)
			if err == nil {
				_, err = g.VerifyChallenge(c.Payload(), ch)
			}
			out := qrVerifyOutput{OK: err == nil, Reason: qr.ReasonOf(err)}
			if c != nil {
				out.Token, out.Time, out.Counter = c.Credential.Token.String(), c.Time.Format(time.RFC3339), c.Counter
			}
			if err := printJSON(cmd.OutOrStdout(), out); err != nil {
				return err
			}
			if !out.OK {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&f.pubs, "pub", nil, "issuer public key (qr-issuer.pub); repeat during a key rotation")
	cmd.Flags().StringVar(&f.payload, "payload", "", "the code's text (default: first line of standard input)")
	cmd.Flags().StringVar(&f.at, "at", "", "the gate's clock, RFC 3339 (default now)")
	cmd.Flags().DurationVar(&f.window, "window", qr.DefaultWindow, "accepted distance between the code's time and the clock, either way")
	cmd.Flags().StringVar(&f.challenge, "challenge", "", "the challenge the gate showed, hex (the code must carry it)")
	cmd.Flags().StringVar(&f.denyPath, "denylist", "", "deny-list snapshot: refuse its tokens as revoked")
	cmd.Flags().StringVar(&f.denyPub, "denylist-pub", "", "the deny list's public key (denylist.pub)")
	return cmd
}

// gate builds the offline verifier the flags describe, and the challenge
// the code must carry (nil: none).
func (f *qrVerifyFlags) gate(ctx context.Context) (*qr.Gate, []byte, error) {
	if len(f.pubs) == 0 {
		return nil, nil, usageErr("qr verify: --pub is required (see --help)")
	}
	var keys []ed25519.PublicKey
	for _, p := range f.pubs {
		_, k, err := qrReadKey(ctx, "pub", p, false)
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, k)
	}
	is, err := qr.NewIssuers(keys...)
	if err != nil {
		return nil, nil, usageErr("--pub: %w", err)
	}
	now := time.Now()
	if f.at != "" {
		if now, err = time.Parse(time.RFC3339, f.at); err != nil {
			return nil, nil, usageErr("--at: want RFC 3339: %w", err)
		}
	}
	var ch []byte
	if f.challenge != "" {
		if ch, err = hex.DecodeString(f.challenge); err != nil {
			return nil, nil, usageErr("--challenge: want hex")
		}
	}
	opts := qr.GateOptions{Issuers: is, Window: f.window, Now: func() time.Time { return now }}
	if f.denyPath != "" {
		if f.denyPub == "" {
			return nil, nil, usageErr("--denylist needs --denylist-pub")
		}
		dpub, err := dlReadPublicKey(ctx, f.denyPub)
		if err != nil {
			return nil, nil, err
		}
		if opts.DenyList, err = dlReadSnapshotFile(ctx, "denylist", f.denyPath, dpub); err != nil {
			return nil, nil, err
		}
	}
	g, err := qr.NewGate(opts)
	if err != nil {
		return nil, nil, usageErr("%w", err)
	}
	return g, ch, nil
}

// readCodeLine reads the first line of r, bounded: a longer line is
// returned cut, and then refused as malformed.
func readCodeLine(ctx context.Context, r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(interruptible(ctx, r), int64(qr.MaxTextSize)+3))
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", usageErr("read standard input: %v", err)
	}
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	return strings.TrimRight(string(line), "\r"), nil
}

// qrReadKey reads an issuing key file of 'faregate keys qr' (the deny-list
// keys' PEM format).
func qrReadKey(ctx context.Context, flag, path string, private bool) (ed25519.PrivateKey, ed25519.PublicKey, error) {
	b, err := readInput(ctx, "--"+flag, path, maxKeyFile)
	if err != nil {
		return nil, nil, err
	}
	if private {
		k, err := denylist.ParsePrivateKey(b)
		if err != nil {
			return nil, nil, usageErr("--%s %s: not an Ed25519 private key (want qr-issuer.key from 'faregate keys qr')", flag, path)
		}
		return k, nil, nil
	}
	p, err := denylist.ParsePublicKey(b)
	if err != nil {
		return nil, nil, usageErr("--%s %s: not an Ed25519 public key (want qr-issuer.pub from 'faregate keys qr')", flag, path)
	}
	return nil, p, nil
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
