package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/qr"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestBackendQR runs faregate backend with --qr-key: a rider enrolled by a
// card tap gets a credential through 'faregate qr issue --backend', a code
// from 'faregate qr show' uploaded by a gate is confirmed, and revoking the
// device key with 'faregate qr revoke' lists the token on the deny list
// and refuses the key's next uploaded tap.
func TestBackendQR(t *testing.T) {
	bin := faregateBinary(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	pubPath, gateKey := writeGatePub(t, dir)
	out, err := exec.Command(bin, "backend", "gates", "add", "--id", "G-1", "--pub", pubPath, "--data", data).CombinedOutput()
	require.NoError(t, err, string(out))
	out, err = exec.Command(bin, "keys", "qr", "--out", dir).CombinedOutput()
	require.NoError(t, err, string(out))
	vk, err := tap.GenerateVaultKey(nil)
	require.NoError(t, err)
	vkPEM, err := tap.MarshalVaultKey(vk)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vault.key"), vkPEM, 0o600))
	operator := filepath.Join(dir, "operator")
	require.NoError(t, os.WriteFile(operator, []byte("op-token\n"), 0o600))
	_, dlKey, err := denylist.GenerateKey(nil)
	require.NoError(t, err)
	dlPEM, err := denylist.MarshalPrivateKey(dlKey)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "denylist.key"), dlPEM, 0o600))
	addr := freeAddr(t)
	cmd := exec.Command(bin, "backend", "--data", data, "--listen", addr, "--rules", seedRules,
		"--vault-key", filepath.Join(dir, "vault.key"), "--operator-token", operator,
		"--denylist-key", filepath.Join(dir, "denylist.key"), "--qr-key", filepath.Join(dir, "qr-issuer.key"))
	base, logs := startBackend(t, cmd, addr)

	var seq uint64
	upload := func(recs ...tap.Record) {
		t.Helper()
		for i := range recs {
			seq++
			recs[i].Seq = seq
		}
		body, err := json.Marshal(tap.Batch{Gate: "G-1", Taps: recs})
		require.NoError(t, err)
		req, err := http.NewRequest("POST", base+"/v1/taps", bytes.NewReader(body))
		require.NoError(t, err)
		tap.SignRequest(req, "G-1", gateKey, time.Now(), body)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, string(b))
	}
	operatorDo := func(method, path string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer op-token")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, b
	}

	// Not enrolled yet: the back office refuses to issue.
	const pan = "5413330089020011"
	tk := rider.NewToken([]byte("k"), pan, "00")
	device := filepath.Join(dir, "device.json")
	issue := []string{"qr", "issue", "--backend", base, "--operator-token", operator, "--token", tk.String(), "--out", device, "--valid", "24h", "--category", "child"}
	_, msg, code := dlRun(t, "", issue...)
	require.Equal(t, 1, code)
	require.Contains(t, msg, "no payment method in the vault")
	_, msg, code = dlRun(t, "", "qr", "issue", "--backend", base, "--token", tk.String(), "--out", device)
	require.Equal(t, 2, code, msg)

	// A card tap enrols the rider (its card data goes to the vault).
	now := time.Now().UTC().Truncate(time.Millisecond)
	id := uuid.Must(uuid.NewV7())
	sealed, err := tap.SealCardData(vk.PublicKey(), "G-1", id, tap.CardData{PAN: pan, PSN: "00"})
	require.NoError(t, err)
	upload(tap.Record{ID: id, Gate: "G-1", Time: now.Add(-time.Minute), Kind: tap.KindEMV, Token: tk, MaskedPAN: "541333******0011",
		Decision: tap.Open, Reason: "ok", Location: tap.Location{Mode: "bus"}, Sealed: sealed})

	stdout, msg, code := dlRun(t, "", issue...)
	require.Equal(t, 0, code, msg)
	var issued qrIssued
	require.NoError(t, json.Unmarshal([]byte(stdout), &issued))
	require.Equal(t, tk.String(), issued.Token)
	require.Equal(t, "child", issued.Category)

	// The app shows a code; the gate uploads it as a provisional QR tap.
	text := strings.TrimSpace(qrShow(t, dir, "--text"))
	c, err := qr.Parse(text)
	require.NoError(t, err)
	qrTap := tap.Record{ID: uuid.Must(uuid.NewV7()), Gate: "G-1", Time: time.Now().UTC().Truncate(time.Millisecond), Kind: tap.KindQR, Token: tk,
		Scheme: "qr", Category: "child", Decision: tap.Open, Reason: "ok", Provisional: true, Location: tap.Location{Mode: "bus"}, QR: c.Payload()}
	upload(qrTap)
	code, body := operatorDo("GET", "/v1/riders/"+tk.String()+"/receipts")
	require.Equal(t, 200, code, string(body))
	var rc backend.ReceiptJSON
	require.NoError(t, json.Unmarshal(body, &rc))
	require.Len(t, rc.QRTaps, 1)
	require.Equal(t, "confirmed", rc.QRTaps[0].Outcome, string(body))
	require.Len(t, rc.Legs, 2, "the card tap and the confirmed QR tap")

	// 'faregate qr revoke' revokes the device key at the back office and
	// lists the token on the deny list the gates poll.
	revoke := []string{"qr", "revoke", "--backend", base, "--operator-token", operator}
	_, msg, code = dlRun(t, "", append(revoke, "--device-key", strings.Repeat("ab", 32))...)
	require.Equal(t, 1, code, "a key never issued")
	require.Contains(t, msg, "never issued")
	_, msg, code = dlRun(t, "", append(revoke, "--device-key", "abcd")...)
	require.Equal(t, 2, code, msg)
	_, msg, code = dlRun(t, "", "qr", "revoke", "--backend", base, "--device", device)
	require.Equal(t, 2, code, "no operator token: "+msg)
	stdout, msg, code = dlRun(t, "", append(revoke, "--device", device)...)
	require.Equal(t, 0, code, msg)
	var rev qrRevoked
	require.NoError(t, json.Unmarshal([]byte(stdout), &rev))
	require.Equal(t, issued.Device, rev.Device)
	require.Equal(t, tk.String(), rev.Token)
	require.NotEmpty(t, rev.RevokedAt)
	require.NotZero(t, rev.DenylistVersion)

	// The device's next code, opened by a gate that had not yet heard,
	// is refused at upload and not charged.
	text = strings.TrimSpace(qrShow(t, dir, "--text"))
	c, err = qr.Parse(text)
	require.NoError(t, err)
	late := qrTap
	late.ID, late.Time, late.QR = uuid.Must(uuid.NewV7()), time.Now().UTC().Truncate(time.Millisecond), c.Payload()
	upload(late)
	code, body = operatorDo("GET", "/v1/riders/"+tk.String()+"/receipts")
	require.Equal(t, 200, code, string(body))
	rc = backend.ReceiptJSON{}
	require.NoError(t, json.Unmarshal(body, &rc))
	require.Len(t, rc.QRTaps, 2)
	outcomes := map[string]string{}
	for _, q := range rc.QRTaps {
		outcomes[q.ID] = q.Outcome + "/" + q.Reason
	}
	require.Equal(t, "confirmed/", outcomes[qrTap.ID.String()])
	require.Equal(t, "refused/revoked", outcomes[late.ID.String()], string(body))
	require.Len(t, rc.Legs, 2, "the revoked key's tap is not a leg")

	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(metrics), `faregate_backend_qr_taps_total{outcome="confirmed",reason=""} 1`)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), logs.String())
	require.NotContains(t, logs.String(), pan)
}
