package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/qr"
)

// backendQRFlags are faregate backend's QR flags (docs/qr.md).
type backendQRFlags struct {
	key     string   // the issuing key: enables issuing and verification
	issuers []string // retired issuer public keys still accepted in uploads
	window  time.Duration
}

func (f *backendQRFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.key, "qr-key", "", "the QR issuing key (qr-issuer.key): verify uploaded QR taps, serve POST /v1/qr/credentials")
	cmd.Flags().StringArrayVar(&f.issuers, "qr-issuer", nil, "a retired QR issuer public key whose credentials may still be uploaded (repeatable)")
	cmd.Flags().DurationVar(&f.window, "qr-window", qr.DefaultWindow, "the gates' QR window: a code's time within this of the tap's")
}

// open returns the QR verifier for ingest and the QR API, both nil
// without --qr-key (QR taps are then stored unverified and not settled).
func (f *backendQRFlags) open(ctx context.Context, store backend.Store, reg prometheus.Registerer, operator string) (*backend.QRVerifier, *backend.QRAPI, error) {
	if f.key == "" {
		if len(f.issuers) > 0 {
			return nil, nil, usageErr("backend: --qr-issuer needs --qr-key")
		}
		return nil, nil, nil
	}
	qs, ok := store.(backend.QRStore)
	if !ok {
		return nil, nil, fmt.Errorf("backend: the store keeps no QR credentials")
	}
	key, _, err := qrReadKey(ctx, "qr-key", f.key, true)
	if err != nil {
		return nil, nil, err
	}
	keys := []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}
	for _, p := range f.issuers {
		_, pub, err := qrReadKey(ctx, "qr-issuer", p, false)
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, pub)
	}
	set, err := qr.NewIssuers(keys...)
	if err != nil {
		return nil, nil, usageErr("backend: --qr-key, --qr-issuer: %v", err)
	}
	if f.window <= 0 {
		return nil, nil, usageErr("backend: --qr-window must be positive")
	}
	v, err := backend.NewQRVerifier(qs, set, f.window, reg)
	if err != nil {
		return nil, nil, err
	}
	return v, &backend.QRAPI{Store: store, QR: qs, Key: key, Token: operator}, nil
}

// readOperatorToken reads the operator bearer token of a QR command's
// --operator-token FILE.
func readOperatorToken(name, path string) (string, error) {
	if path == "" {
		return "", usageErr("%s: --backend needs --operator-token FILE", name)
	}
	tok, err := os.ReadFile(path)
	if err != nil {
		return "", usageErr("%s: --operator-token: %v", name, err)
	}
	return strings.TrimSpace(string(tok)), nil
}

// issueThroughBackend asks the back office at base to certify the device
// key (POST /v1/qr/credentials, with the operator token) and returns the
// signed credential.
func issueThroughBackend(ctx context.Context, base, operator string, req backend.QRIssueRequest) (*qr.Credential, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var out backend.QRCredentialJSON
	if err := qrBackendPost(ctx, "qr issue", base, operator, "/v1/qr/credentials", body, http.StatusCreated, &out); err != nil {
		return nil, err
	}
	cred, err := qr.ParseCredential(out.Credential)
	if err != nil {
		return nil, fmt.Errorf("qr issue: the back office's credential: %w", err)
	}
	if cred.Token != req.Token || hex.EncodeToString(cred.Device[:]) != req.Device {
		return nil, fmt.Errorf("qr issue: the back office certified another token or device key")
	}
	return cred, nil
}

// qrBackendPost sends body to the back office's QR API at base+path with
// the operator token and decodes a want answer into out. An unusable base
// is a usage error (exit 2); another answer is an error naming the back
// office's reason (exit 1).
func qrBackendPost(ctx context.Context, name, base, operator, path string, body []byte, want int, out any) error {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErr("%s: --backend: want http(s)://host:port", name)
	}
	hr, err := http.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Authorization", "Bearer "+operator)
	hr.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(hr)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if resp.StatusCode != want {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(rb, &e) //nolint:errcheck // the status says enough without it
		return fmt.Errorf("%s: the back office answered %s: %s", name, resp.Status, e.Error)
	}
	if err := json.Unmarshal(rb, out); err != nil {
		return fmt.Errorf("%s: the back office's answer: %w", name, err)
	}
	return nil
}
