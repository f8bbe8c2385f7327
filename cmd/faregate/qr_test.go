package main

import (
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const qrToken = "00112233445566778899aabbccddeeff"

// qrSetup makes an issuing key and a device file valid from
// 2026-11-23T00:00:00Z for a day.
func qrSetup(t *testing.T) (dir string) {
	dir = t.TempDir()
	out, _, code := dlRun(t, "", "keys", "qr", "--out", dir)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "key id ")
	_, msg, code := dlRun(t, "", "keys", "qr", "--out", dir)
	require.Equal(t, 2, code, "never overwrites a key: %s", msg)
	fi, err := os.Stat(filepath.Join(dir, "qr-issuer.key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	out, msg, code = dlRun(t, "", "qr", "issue", "--key", filepath.Join(dir, "qr-issuer.key"), "--token", qrToken,
		"--out", filepath.Join(dir, "device.json"), "--from", "2026-11-23T00:00:00Z", "--valid", "24h", "--category", "senior")
	require.Equal(t, 0, code, msg)
	var issued qrIssued
	require.NoError(t, json.Unmarshal([]byte(out), &issued))
	require.Equal(t, qrToken, issued.Token)
	require.Equal(t, "2026-11-23T00:00:00Z", issued.NotBefore)
	require.Equal(t, "2026-11-23T23:59:59Z", issued.NotAfter)
	require.Equal(t, "senior", issued.Category)
	require.Len(t, issued.Device, 64)
	fi, err = os.Stat(filepath.Join(dir, "device.json"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the device file holds the device's private key")
	return dir
}

func qrShow(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, msg, code := dlRun(t, "", append([]string{"qr", "show", "--device", filepath.Join(dir, "device.json")}, args...)...)
	require.Equal(t, 0, code, msg)
	return out
}

func qrVerify(t *testing.T, stdin string, args ...string) (qrVerifyOutput, int) {
	t.Helper()
	out, msg, code := dlRun(t, stdin, append([]string{"qr", "verify"}, args...)...)
	var v qrVerifyOutput
	if code != 2 {
		require.NoError(t, json.Unmarshal([]byte(out), &v), "%s %s", out, msg)
	}
	return v, code
}

func TestQRShowVerify(t *testing.T) {
	dir := qrSetup(t)
	pub := filepath.Join(dir, "qr-issuer.pub")
	text := strings.TrimSpace(qrShow(t, dir, "--text", "--at", "2026-11-23T08:00:00Z"))
	require.True(t, strings.HasPrefix(text, "FQ:"), text)

	v, code := qrVerify(t, text+"\n", "--pub", pub, "--at", "2026-11-23T08:00:30Z")
	require.Equal(t, 0, code)
	require.Equal(t, qrVerifyOutput{OK: true, Token: qrToken, Time: "2026-11-23T08:00:00Z", Counter: 1}, v)

	// The counter is kept in the device file: the next code has 2.
	full := qrShow(t, dir, "--at", "2026-11-23T08:01:00Z")
	require.Contains(t, full, "QR version 10-M, counter 2")
	lines := strings.Split(strings.TrimSpace(full), "\n")
	v, code = qrVerify(t, "", "--pub", pub, "--at", "2026-11-23T08:01:00Z", "--payload", lines[len(lines)-1])
	require.Equal(t, 0, code)
	require.Equal(t, uint32(2), v.Counter)

	for _, tc := range []struct {
		name   string
		args   []string
		reason string
	}{
		{"clock skew, gate ahead", []string{"--at", "2026-11-23T08:01:01Z"}, "clock_skew"},
		{"clock skew, gate behind", []string{"--at", "2026-11-23T07:58:59Z"}, "clock_skew"},
		{"narrower window", []string{"--at", "2026-11-23T08:00:31Z", "--window", "30s"}, "clock_skew"},
		{"expired", []string{"--at", "2026-11-24T08:00:00Z", "--window", "48h"}, "expired"},
		{"challenge", []string{"--at", "2026-11-23T08:00:00Z", "--challenge", "abcd"}, "challenge_mismatch"},
	} {
		v, code := qrVerify(t, text, append([]string{"--pub", pub}, tc.args...)...)
		require.Equal(t, 1, code, tc.name)
		require.False(t, v.OK, tc.name)
		require.Equal(t, tc.reason, string(v.Reason), tc.name)
		require.Equal(t, qrToken, v.Token, "refusals still say which code: %s", tc.name)
	}

	v, code = qrVerify(t, "FQ:NOT-A-CODE", "--pub", pub)
	require.Equal(t, 1, code)
	require.Equal(t, qrVerifyOutput{Reason: "malformed"}, v)
	v, code = qrVerify(t, strings.Repeat("A", 5000), "--pub", pub)
	require.Equal(t, 1, code)
	require.Equal(t, "malformed", string(v.Reason))

	// Another back office's key: unknown key id.
	other := t.TempDir()
	_, _, code = dlRun(t, "", "keys", "qr", "--out", other)
	require.Equal(t, 0, code)
	v, code = qrVerify(t, text, "--pub", filepath.Join(other, "qr-issuer.pub"), "--at", "2026-11-23T08:00:00Z")
	require.Equal(t, 1, code)
	require.Equal(t, "unknown_key_id", string(v.Reason))
	// Both keys (a rotation): accepted.
	_, code = qrVerify(t, text, "--pub", filepath.Join(other, "qr-issuer.pub"), "--pub", pub, "--at", "2026-11-23T08:00:00Z")
	require.Equal(t, 0, code)
}

func TestQRVerifyDenyList(t *testing.T) {
	dir := qrSetup(t)
	_, msg, code := dlRun(t, "", "keys", "denylist", "--out", dir)
	require.Equal(t, 0, code, msg)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokens"), []byte(qrToken+"\n"), 0o644))
	_, msg, code = dlRun(t, "", "denylist", "build", "--tokens", filepath.Join(dir, "tokens"), "--key", filepath.Join(dir, "denylist.key"),
		"--version", "1", "--out", filepath.Join(dir, "snap"))
	require.Equal(t, 0, code, msg)
	text := strings.TrimSpace(qrShow(t, dir, "--text", "--at", "2026-11-23T08:00:00Z"))
	v, code := qrVerify(t, text, "--pub", filepath.Join(dir, "qr-issuer.pub"), "--at", "2026-11-23T08:00:00Z",
		"--denylist", filepath.Join(dir, "snap"), "--denylist-pub", filepath.Join(dir, "denylist.pub"))
	require.Equal(t, 1, code)
	require.Equal(t, "revoked", string(v.Reason))
}

func TestQRUsageErrors(t *testing.T) {
	dir := qrSetup(t)
	pub, key := filepath.Join(dir, "qr-issuer.pub"), filepath.Join(dir, "qr-issuer.key")
	dev := filepath.Join(dir, "device.json")
	for _, args := range [][]string{
		{"qr", "verify", "--payload", "FQ:"},
		{"qr", "verify", "--pub", "/nonexistent", "--payload", "FQ:"},
		{"qr", "verify", "--pub", key, "--payload", "FQ:"},
		{"qr", "verify", "--pub", pub, "--at", "yesterday", "--payload", "FQ:"},
		{"qr", "verify", "--pub", pub, "--denylist", dev, "--payload", "FQ:"},
		{"qr", "issue", "--key", key, "--token", "xyz", "--out", filepath.Join(dir, "d2")},
		{"qr", "issue", "--key", pub, "--token", qrToken, "--out", filepath.Join(dir, "d2")},
		{"qr", "issue", "--key", key, "--token", qrToken, "--out", dev},
		{"qr", "issue", "--key", key, "--token", qrToken, "--out", filepath.Join(dir, "d2"), "--category", "vip"},
		{"qr", "show"},
		{"qr", "show", "--device", pub},
		{"qr", "show", "--device", dev, "--challenge", strings.Repeat("00", 17)},
	} {
		_, msg, code := dlRun(t, "", args...)
		require.Equal(t, 2, code, "%v: %s", args, msg)
	}
}

// TestQRPNGDecodesWithZbar: a decoder nobody here wrote reads the PNG back
// to a code that verify accepts.
func TestQRPNGDecodesWithZbar(t *testing.T) {
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Skip("zbarimg not installed (apt-get install zbar-tools; .ci/run installs it)")
	}
	dir := qrSetup(t)
	for _, ch := range []string{"", "00112233445566778899aabbccddeeff"} {
		png := filepath.Join(dir, "code.png")
		shown := qrShow(t, dir, "--png", png, "--at", "2026-11-23T08:00:00Z", "--challenge", ch)
		lines := strings.Split(strings.TrimSpace(shown), "\n")
		want := lines[len(lines)-1]
		if ch == "" {
			require.Contains(t, shown, "QR version 10-M") // docs/qr.md
		} else {
			require.Contains(t, shown, "QR version 11-M")
		}

		cmd := exec.Command(zbar, "--quiet", "--raw", png)
		got, err := cmd.Output()
		require.NoError(t, err, "zbarimg")
		text := strings.TrimRight(string(got), "\n")
		require.Equal(t, want, text, "zbarimg reads back what show printed")

		v, code := qrVerify(t, text+"\n", "--pub", filepath.Join(dir, "qr-issuer.pub"), "--at", "2026-11-23T08:00:10Z", "--challenge", ch)
		require.Equal(t, 0, code, "%+v", v)
		require.True(t, v.OK)
		require.Equal(t, qrToken, v.Token)
	}
}

// TestQRTerminalCodeScans: the code 'qr show' draws in the terminal is a
// QR code zbarimg reads, once its half-block characters are turned back
// into pixels (█ both halves light, ▀ top light, ▄ bottom light, space
// both dark — the terminal's dark background).
func TestQRTerminalCodeScans(t *testing.T) {
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Skip("zbarimg not installed (apt-get install zbar-tools; .ci/run installs it)")
	}
	dir := qrSetup(t)
	shown := qrShow(t, dir, "--at", "2026-11-23T08:00:00Z")
	lines := strings.Split(strings.TrimRight(shown, "\n"), "\n")
	want := lines[len(lines)-1]
	var rows [][]rune
	for _, l := range lines {
		if strings.ContainsAny(l, "█▀▄") {
			rows = append(rows, []rune(l))
		}
	}
	require.NotEmpty(t, rows)
	const scale = 6
	w, h := len(rows[0]), 2*len(rows)
	img := image.NewGray(image.Rect(0, 0, w*scale, h*scale))
	for y, row := range rows {
		require.Len(t, row, w, "every terminal row is as wide")
		for x, r := range row {
			top, bottom := r == '█' || r == '▀', r == '█' || r == '▄'
			for dy := range scale {
				for dx := range scale {
					img.SetGray(x*scale+dx, 2*y*scale+dy, color.Gray{Y: lum(top)})
					img.SetGray(x*scale+dx, (2*y+1)*scale+dy, color.Gray{Y: lum(bottom)})
				}
			}
		}
	}
	path := filepath.Join(dir, "terminal.png")
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, png.Encode(f, img))
	require.NoError(t, f.Close())
	got, err := exec.Command(zbar, "--quiet", "--raw", path).Output()
	require.NoError(t, err, "zbarimg cannot read the terminal rendering")
	require.Equal(t, want, strings.TrimRight(string(got), "\n"))
}

func lum(light bool) uint8 {
	if light {
		return 255
	}
	return 0
}
