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
	// The week on the network: the late decline reaches the gate over HTTP,
	// the card is refused, then readmitted; capping settles the week.
	require.Regexp(t, `Monday's charges to the acquirer \(ISO 8583, simulated host\): 6 approved, 1 declined`, out)
	require.Contains(t, out, "declined late (51, retry_later, next try Wed 23:00): deny list v1")
	require.Contains(t, out, "Wed 23:00  back office: 1.75 resubmitted for visa-qvsdc: 00 (approved): off the deny list, v2")
	require.Contains(t, out, "Sunday's charges to the acquirer")
	// What the simulated acquirer holds equals what capping charged.
	m := regexp.MustCompile(`the week's charges total (\d+\.\d\d) GBP\.\n  The acquirer's ledger holds (\d+\.\d\d) GBP`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	require.Equal(t, m[1], m[2])
	require.Contains(t, out, "gate: deny list v0 -> v1 (1 entry)")
	require.Contains(t, out, "gate: visa-qvsdc rejected: denied")
	require.Contains(t, out, "gate: deny list v1 -> v2 (0 entries)")
	require.Contains(t, out, "bus-tram-week")
	require.Regexp(t, `\d+ taps opened the gate; the week's charges total \d+\.\d\d GBP`, out)
	require.NotContains(t, out, "4761739001010010")

	out, code = run(t, "demo", "--network=false")
	require.Equal(t, 0, code)
	require.NotContains(t, out, "A week on the network")
}
