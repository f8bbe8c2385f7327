package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// run executes the faregate command line in process and returns stdout and
// the exit status main would use.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), exitCode(err)
}

func TestTapCommand(t *testing.T) {
	out, code := run(t, "tap", "--test-keys", "--card", "visa-qvsdc", "--date", "2026-11-23")
	require.Equal(t, 0, code, out)
	var got tapOutput
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Equal(t, "open", string(got.Decision))
	require.Equal(t, "fDDA", string(got.ODA.Method))
	require.True(t, got.ODA.OK)
	require.Equal(t, "476173******0010", got.PAN)
	require.NotContains(t, out, "4761739001010010")

	out, code = run(t, "tap", "--test-keys", "--card", "fault-wrong-pan-in-cert", "--date", "2026-11-23")
	require.Equal(t, 0, code, "a rejection is a decision")
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Equal(t, "reject", string(got.Decision))
	require.Equal(t, "icc", string(got.ODA.Stage))
	require.Equal(t, "pan_mismatch", string(got.ODA.Reason))
}

func TestTapTranscript(t *testing.T) {
	dir := t.TempDir()
	plain, masked := filepath.Join(dir, "plain.json"), filepath.Join(dir, "masked.json")
	_, code := run(t, "tap", "--test-keys", "--card", "mastercard-cda", "--transcript", plain)
	require.Equal(t, 0, code)
	_, code = run(t, "tap", "--test-keys", "--card", "mastercard-cda", "--transcript", masked, "--mask")
	require.Equal(t, 0, code)
	p, err := os.ReadFile(plain)
	require.NoError(t, err)
	m, err := os.ReadFile(masked)
	require.NoError(t, err)
	require.Contains(t, string(p), "5413330089020011")
	require.NotContains(t, string(m), "5413330089020011")
	var tr []map[string]string
	require.NoError(t, json.Unmarshal(m, &tr))
	require.Equal(t, "00A404000E325041592E5359532E444446303100", tr[0]["command"])
	fi, err := os.Stat(plain)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "transcripts hold card data")
}

func TestTapUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"tap"},
		{"tap", "--test-keys", "--card", "no-such-card"},
		{"tap", "--test-keys", "--card", "visa-qvsdc", "--date", "23/11/2026"},
		{"tap", "--card", "visa-qvsdc", "--capk", "/nonexistent.json"},
	} {
		out, code := run(t, args...)
		require.Equal(t, 2, code, "%v: %s", args, out)
	}
}

// TestTapNeedsTrust: outside the demo, a gate without a CA list is a usage
// error, not a silent fallback to the test PKI.
func TestTapNeedsTrust(t *testing.T) {
	root := newRootCmd()
	root.SetArgs([]string{"tap", "--card", "visa-qvsdc"})
	root.SetOut(io.Discard)
	err := root.ExecuteContext(t.Context())
	require.Equal(t, 2, exitCode(err))
	require.ErrorContains(t, err, "--capk is required")
	out, code := run(t, "tap", "--card", "visa-qvsdc", "--test-keys", "--date", "2026-11-23")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, `"decision": "open"`)
}

func TestTapLiveKeysRefuseTestCards(t *testing.T) {
	capk := filepath.Join("..", "..", "testdata", "pki", "capk.json")
	out, code := run(t, "tap", "--card", "visa-qvsdc", "--capk", capk)
	require.Equal(t, 0, code)
	require.Contains(t, out, `"decision": "reject"`)
	require.Contains(t, out, `"reason": "test_key"`, "test CA keys are refused outside test mode")
	out, _ = run(t, "tap", "--card", "visa-qvsdc", "--capk", capk, "--test-keys")
	require.Contains(t, out, `"decision": "open"`)
}

func TestDemo(t *testing.T) {
	out, code := run(t, "demo")
	require.Equal(t, 0, code, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Contains(t, lines[0], "CARD")
	require.Contains(t, out, "as expected.")
	require.NotContains(t, out, "NO (want")
	for _, card := range []string{"visa-qvsdc", "mastercard-cda", "amex-cda", "discover-dda", "maestro-sda", "unionpay-qpboc", "fault-no-ppse"} {
		require.Contains(t, out, card)
	}
	// The system: back office, acquirer simulator, three gates, riders.
	for _, step := range demoSteps {
		require.Contains(t, out, "yes "+step+":", out)
	}
	require.Contains(t, out, "Every step of the story happened.")
	require.Regexp(t, `Tue 05:00  back office: 3\.50 GBP charge of token [0-9a-f]{8}… declined \(51\): on the deny list, v1`, out)
	require.Regexp(t, `G-NORTH: visa-qvsdc #1 \(token [0-9a-f]{8}…\): reject/denied`, out)
	require.Contains(t, out, "G-NORTH: deny list v0 -> v1 (1 entry)")
	require.Regexp(t, `G-SOUTH: link back: uploaded (\d+) of \d+ waiting; journal (\d+) taps, back office (\d+), unsent 0`, out)
	m := regexp.MustCompile(`journal (\d+) taps, back office (\d+)`).FindStringSubmatch(out)
	require.Equal(t, m[1], m[2])
	require.Contains(t, out, "G-CENTRE: forged card (corrupt issuer certificate): reject/oda_failed")
	require.Regexp(t, `settled \S+: 201 riders, \d+ legs, [\d.]+ GBP charged; acquirer \(ISO 8583\): 200 approved, 1 declined, 0 not sent \(no card\)`, out)
	require.Regexp(t, `deny list       back office v2; G-NORTH v2 G-CENTRE v2 G-SOUTH v2`, out)
	require.NotContains(t, out, "MISMATCH")
	// The QR rider: its card enrols it, the back office issues its
	// credential, and its capped fares reach the acquirer on that card.
	require.Regexp(t, `Mon 04:45  G-NORTH: QR rider's card \(token [0-9a-f]{8}…\): open, uploaded`, out)
	require.Contains(t, out, "back office: POST /v1/qr/credentials: the QR rider's app key")
	require.Contains(t, out, "QR rider        12 QR rides and 1 card tap, fares 11.95, capped 9.40 (bus-tram-reduced-day); acquirer ledger holds 9.40 in 3 approvals on its card")
	require.NotRegexp(t, `\d{12,}`, out, "no PAN of any rider")
	require.NotContains(t, out, "operator token") // only with --keep-running

	out, code = run(t, "demo", "--network=false")
	require.Equal(t, 0, code)
	require.NotContains(t, out, "The system on loopback")
}

// TestDemoNamesMissingStep: the demo's verdict names the first step of
// the story that did not happen, with exit 1; a small run still tells the
// whole story; bad flags are usage errors.
func TestDemoNamesMissingStep(t *testing.T) {
	d := &systemDemo{steps: map[string]string{}}
	for _, s := range demoSteps {
		if s != stepRefused && s != stepForged {
			d.happened(s, "seen")
		}
	}
	err := d.verdict()
	require.Equal(t, 1, exitCode(err))
	require.ErrorContains(t, err, "this step of the story did not happen: "+stepRefused)
	d.happened(stepRefused, "seen")
	require.ErrorContains(t, d.verdict(), stepForged)
	d.happened(stepForged, "seen")
	require.NoError(t, d.verdict())

	out, code := run(t, "demo", "--riders", "1", "--days", "2")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "yes "+stepPaid)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x"), nil, 0o600))
	_, code = run(t, "demo", "--data", dir)
	require.Equal(t, 2, code)
	_, code = run(t, "demo", "--days", "1")
	require.Equal(t, 2, code)
}

// TestDemoRenewsQRCredential: a credential lasts at most 31 days, so over
// a longer run the QR rider's app renews it (a new device key, certified
// by the back office) and keeps travelling and being charged.
func TestDemoRenewsQRCredential(t *testing.T) {
	if testing.Short() {
		t.Skip("33 simulated days")
	}
	out, code := run(t, "demo", "--riders", "3", "--days", "33")
	require.Equal(t, 0, code, out)
	require.Equal(t, 2, strings.Count(out, "certified for its token"), "enrolment and one renewal")
	require.Contains(t, out, "yes "+stepQRCharged)
}
