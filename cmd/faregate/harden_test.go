package main

// One test per finding of issue 8 ("the CLI"): each failed on the code
// before the fix.

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMain lets the signal tests run this test binary as the faregate
// command: with FAREGATE_TEST_MAIN=1 it is main().
func TestMain(m *testing.M) {
	if os.Getenv("FAREGATE_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

const (
	dlData  = "../../testdata/denylist"
	odaCAPK = "../../testdata/capk/generated.json"
	odaGood = "../../testdata/oda/generated/cda.json"
)

// runSignalled starts faregate with args and a standard input nobody
// writes to, sends sig once it runs, and returns its exit status and
// output. It fails the test when the command does not stop within 10 s.
func runSignalled(t *testing.T, sig syscall.Signal, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "FAREGATE_TEST_MAIN=1")
	stdin, w, err := os.Pipe()
	require.NoError(t, err)
	defer w.Close() // open until the end: a read of stdin blocks
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	stdin.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	time.Sleep(300 * time.Millisecond) // let it reach its blocking read
	require.NoError(t, cmd.Process.Signal(sig))
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), out.String()
		}
		require.NoError(t, err)
		return 0, out.String()
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v: still running 10 s after %v; output: %s", args, sig, out.String())
		return 0, ""
	}
}

func requireNoFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "partial output left in %s", dir)
}

// TestSignalsStopEveryCommand: SIGINT or SIGTERM stops a command waiting
// on its input, leaves no output file and exits 128 + the signal.
func TestSignalsStopEveryCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs subprocesses")
	}
	for _, tt := range []struct {
		name string
		args func(out string) []string
		sig  syscall.Signal
	}{
		{"denylist build --tokens -", func(out string) []string {
			return []string{"denylist", "build", "--tokens", "-", "--key", dlData + "/test.key", "--version", "1", "--out", filepath.Join(out, "v1.fgdl")}
		}, syscall.SIGINT},
		{"denylist build, SIGTERM", func(out string) []string {
			return []string{"denylist", "build", "--tokens", "-", "--key", dlData + "/test.key", "--version", "1", "--out", filepath.Join(out, "v1.fgdl")}
		}, syscall.SIGTERM},
		{"cap", func(string) []string {
			return []string{"cap", "--rules", capExamples + "/tfl/rules.json", "--taps", "/dev/stdin"}
		}, syscall.SIGINT},
		{"oda verify", func(string) []string {
			return []string{"oda", "verify", "--capk", odaCAPK, "--input", "/dev/stdin"}
		}, syscall.SIGINT},
		{"tap", func(out string) []string {
			return []string{"tap", "--card", "visa-qvsdc", "--capk", "/dev/stdin", "--transcript", filepath.Join(out, "t.json")}
		}, syscall.SIGINT},
		{"denylist inspect", func(string) []string {
			return []string{"denylist", "inspect", "/dev/stdin"}
		}, syscall.SIGINT},
		// Three 1984-bit RSA keys take seconds to generate: interrupted, it
		// writes none of its six files.
		{"keys emv", func(out string) []string {
			return []string{"keys", "emv", "--out", out, "--ca-bits", "1984", "--issuer-bits", "1984", "--icc-bits", "1984", "--exponent", "65537"}
		}, syscall.SIGINT},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			code, msg := runSignalled(t, tt.sig, tt.args(out)...)
			require.Equal(t, 128+int(tt.sig), code, msg)
			require.Contains(t, msg, "interrupted by")
			requireNoFiles(t, out)
		})
	}
}

// TestBoundedReads: every file flag has a limit that fits its format;
// /dev/zero is refused with a clear error and exit 2, not read until the
// kernel kills the process.
func TestBoundedReads(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens.txt")
	require.NoError(t, os.WriteFile(tokens, []byte("00112233445566778899aabbccddeeff\n"), 0o644))
	out := t.TempDir()
	for _, args := range [][]string{
		{"oda", "verify", "--capk", odaCAPK, "--input", "/dev/zero"},
		{"oda", "verify", "--capk", odaCAPK, "--transcript", "/dev/zero"},
		{"oda", "verify", "--capk", "/dev/zero", "--input", odaGood},
		{"tap", "--card", "visa-qvsdc", "--capk", "/dev/zero"},
		{"tap", "--test-keys", "--card", "visa-qvsdc", "--revoked", "/dev/zero"},
		{"tap", "--test-keys", "--card", "/dev/zero"},
		{"denylist", "check", "--list", dlData + "/snapshot-v1.fgdl", "--pub", "/dev/zero", "00112233445566778899aabbccddeeff"},
		{"denylist", "build", "--tokens", tokens, "--key", "/dev/zero", "--version", "1", "--out", filepath.Join(out, "x.fgdl")},
		{"cap", "--rules", "/dev/zero", "--taps", capExamples + "/tfl/taps.csv"},
		{"cap", "--rules", capExamples + "/tfl/rules.json", "--taps", "/dev/zero"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			msg, code := run(t, args...)
			require.Equal(t, 2, code, msg)
		})
	}
	// The messages say what was too large.
	_, code, err := runCLI(t, "oda", "verify", "--capk", odaCAPK, "--input", "/dev/zero")
	require.Equal(t, 2, code)
	require.ErrorContains(t, err, "--input /dev/zero: larger than the limit for its format (1 MiB)")
	_, _, err = runCLI(t, "cap", "--rules", capExamples+"/tfl/rules.json", "--taps", "/dev/zero")
	require.ErrorContains(t, err, "line longer than")
	requireNoFiles(t, out)
}

// TestMaskedTranscriptOfTornTaps: --mask hides the PAN and track data
// even when the tap stopped before the kernel parsed the PAN.
func TestMaskedTranscriptOfTornTaps(t *testing.T) {
	for _, card := range []string{"fault-malformed-record", "fault-malformed-gpo", "fault-card-removed", "fault-unexpected-sw", "mastercard-cda"} {
		t.Run(card, func(t *testing.T) {
			dir := t.TempDir()
			plain, masked := filepath.Join(dir, "plain.json"), filepath.Join(dir, "masked.json")
			_, code := run(t, "tap", "--test-keys", "--card", card, "--transcript", plain)
			require.Equal(t, 0, code)
			_, code = run(t, "tap", "--test-keys", "--card", card, "--transcript", masked, "--mask")
			require.Equal(t, 0, code)
			p, err := os.ReadFile(plain)
			require.NoError(t, err)
			m, err := os.ReadFile(masked)
			require.NoError(t, err)
			for _, pan := range []string{"5413330089020011", "4761739001010010"} {
				if strings.Contains(string(p), pan) {
					require.NotContains(t, string(m), pan, "the PAN of %s in a masked transcript", card)
				}
			}
		})
	}
}

// TestAtomicOutputs: an output that cannot be written leaves no file, and
// a symlink or device is refused rather than replaced or written through.
func TestAtomicOutputs(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "precious.txt")
	require.NoError(t, os.WriteFile(target, []byte("keep me"), 0o644))
	link := filepath.Join(dir, "link.json")
	require.NoError(t, os.Symlink(target, link))

	for _, args := range [][]string{
		{"tap", "--test-keys", "--card", "visa-qvsdc", "--transcript", link},
		{"tap", "--test-keys", "--card", "visa-qvsdc", "--transcript", "/dev/null"},
		{"denylist", "build", "--tokens", dlData + "/tokens-v1.txt", "--key", dlData + "/test.key", "--version", "1", "--out", link},
	} {
		_, code, err := runCLI(t, args...)
		require.Equal(t, 2, code, "%v", args)
		require.ErrorContains(t, err, "not a regular file")
	}
	b, err := os.ReadFile(target)
	require.NoError(t, err)
	require.Equal(t, "keep me", string(b))
	fi, err := os.Lstat(link)
	require.NoError(t, err)
	require.NotZero(t, fi.Mode()&os.ModeSymlink, "the link is still a link")

	// A failed write leaves nothing behind: the output's directory is a file.
	_, code := run(t, "tap", "--test-keys", "--card", "visa-qvsdc", "--transcript", filepath.Join(target, "t.json"))
	require.NotEqual(t, 0, code)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "no temporary or partial file")

	// Replacing a regular file works, whole.
	out := filepath.Join(dir, "t.json")
	require.NoError(t, os.WriteFile(out, []byte("old"), 0o600))
	_, code = run(t, "tap", "--test-keys", "--card", "visa-qvsdc", "--transcript", out)
	require.Equal(t, 0, code)
	b, err = os.ReadFile(out)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(b), "["))
}

func TestODAVerifyDuplicateKeys(t *testing.T) {
	b, err := os.ReadFile(odaGood)
	require.NoError(t, err)
	// "5A" twice: the second would silently win.
	dup := strings.Replace(string(b), `"5A": "4761739001010010",`, `"5A": "4761739001010010", "5A": "5413330089020011",`, 1)
	require.NotEqual(t, string(b), dup)
	path := filepath.Join(t.TempDir(), "dup.json")
	require.NoError(t, os.WriteFile(path, []byte(dup), 0o644))
	_, code, err := runCLI(t, "oda", "verify", "--capk", odaCAPK, "--input", path, "--test-keys")
	require.Equal(t, 2, code)
	require.ErrorContains(t, err, `duplicate key "5A"`)
}

func TestCapEscapesControlCharacters(t *testing.T) {
	taps := filepath.Join(t.TempDir(), "taps.csv")
	require.NoError(t, os.WriteFile(taps, []byte("token,time,mode,fare,zones,received\n"+
		"\x1b[2J\x1b]0;pwned\x07,2025-03-10T08:00:00Z,tube,2.90,1,\n"), 0o644))
	out, code := run(t, "cap", "--rules", capExamples+"/tfl/rules.json", "--taps", taps)
	require.Equal(t, 0, code, out)
	require.NotContains(t, out, "\x1b")
	require.NotContains(t, out, "\x07")
	require.Contains(t, out, `rider \x1b[2J\x1b]0;pwned\a: total`)
}

// TestBOMAccepted: a UTF-8 byte order mark is accepted in every text
// input, as it already was in the taps CSV.
func TestBOMAccepted(t *testing.T) {
	dir := t.TempDir()
	bom := func(src string) string {
		b, err := os.ReadFile(src)
		require.NoError(t, err)
		p := filepath.Join(dir, filepath.Base(src))
		require.NoError(t, os.WriteFile(p, append([]byte("\uFEFF"), b...), 0o644))
		return p
	}
	out, code := run(t, "cap", "--rules", bom(capExamples+"/tfl/rules.json"), "--taps", capExamples+"/tfl/taps.csv")
	require.Equal(t, 0, code, out)
	out, code = run(t, "denylist", "build", "--tokens", bom(dlData+"/tokens-v1.txt"), "--key", dlData+"/test.key",
		"--version", "1", "--out", filepath.Join(dir, "v1.fgdl"), "--list-id", "test", "--created", "2026-11-23T04:01:00Z")
	require.Equal(t, 0, code, out)
	want, err := os.ReadFile(dlData + "/snapshot-v1.fgdl")
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(dir, "v1.fgdl"))
	require.NoError(t, err)
	require.Equal(t, want, got)
	out, code = run(t, "oda", "verify", "--capk", odaCAPK, "--input", bom(odaGood), "--test-keys", "--date", "2026-11-23")
	require.Equal(t, 0, code, out)
}

func TestCardFileErrorsAreUsageErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"name": "x", "applications": [`), 0o644))
	for _, args := range [][]string{
		{"tap", "--test-keys", "--card", bad},
		{"tap", "--test-keys", "--card", "no-such-card"},
		{"tap", "--test-keys", "--card", t.TempDir()},
	} {
		msg, code := run(t, args...)
		require.Equal(t, 2, code, "%v: %s", args, msg)
	}
}

func TestDenylistBuildRefusesFootguns(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	require.NoError(t, os.WriteFile(empty, []byte("# nothing today\n\n"), 0o644))
	out := filepath.Join(dir, "v.fgdl")
	build := func(extra ...string) (int, error) {
		_, code, err := runCLI(t, append([]string{"denylist", "build", "--key", dlData + "/test.key", "--out", out}, extra...)...)
		return code, err
	}
	code, err := build("--tokens", empty, "--version", "2")
	require.Equal(t, 2, code)
	require.ErrorContains(t, err, "--allow-empty")
	_, err = os.Stat(out)
	require.ErrorIs(t, err, os.ErrNotExist)
	code, err = build("--tokens", empty, "--version", "2", "--allow-empty")
	require.Equal(t, 0, code, err)

	code, err = build("--tokens", dlData+"/tokens-v1.txt", "--version", "18446744073709551615")
	require.Equal(t, 2, code)
	require.ErrorContains(t, err, "--allow-huge-version")
	code, err = build("--tokens", dlData+"/tokens-v1.txt", "--version", "18446744073709551615", "--allow-huge-version")
	require.Equal(t, 0, code, err)
}
