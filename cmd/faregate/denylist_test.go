package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const dlTestdata = "../../testdata/denylist"

// dlRun runs the faregate command line in-process and returns stdout, the
// error message (what main prints after "faregate: ") and the exit status.
func dlRun(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	code := 0
	msg := ""
	if err != nil {
		msg = err.Error()
		code = 1
		var ee *exitError
		if ok := dlAsExitError(err, &ee); ok {
			code = ee.code
		}
	}
	return out.String(), msg, code
}

func dlAsExitError(err error, target **exitError) bool {
	for e := err; e != nil; {
		if x, ok := e.(*exitError); ok {
			*target = x
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// dlTokens returns the token lines of a golden token file, as written.
func dlTokens(t *testing.T, name string) []string {
	var tokens []string
	for _, line := range strings.Split(string(dlReadFile(t, dlGolden(name))), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			tokens = append(tokens, line)
		}
	}
	return tokens
}

func dlGolden(name string) string { return filepath.Join(dlTestdata, name) }

func dlReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

func TestKeysDenylist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	out, msg, code := dlRun(t, "", "keys", "denylist", "--out", dir)
	require.Equal(t, 0, code, msg)
	require.Contains(t, out, "denylist.key")
	st, err := os.Stat(filepath.Join(dir, "denylist.key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	require.Contains(t, string(dlReadFile(t, filepath.Join(dir, "denylist.key"))), "-----BEGIN PRIVATE KEY-----")
	require.Contains(t, string(dlReadFile(t, filepath.Join(dir, "denylist.pub"))), "-----BEGIN PUBLIC KEY-----")

	_, msg, code = dlRun(t, "", "keys", "denylist", "--out", dir)
	require.Equal(t, 2, code)
	require.Contains(t, msg, "already exists")
	_, _, code = dlRun(t, "", "keys", "denylist")
	require.Equal(t, 2, code)
	_, _, code = dlRun(t, "", "keys", "denylist", "--bogus")
	require.Equal(t, 2, code)

	// The new pair works end to end.
	snap := filepath.Join(t.TempDir(), "s.fgdl")
	_, msg, code = dlRun(t, "", "denylist", "build", "--tokens", dlGolden("tokens-v1.txt"),
		"--key", filepath.Join(dir, "denylist.key"), "--version", "1", "--out", snap)
	require.Equal(t, 0, code, msg)
	out, msg, code = dlRun(t, "", "denylist", "inspect", "--pub", filepath.Join(dir, "denylist.pub"), snap)
	require.Equal(t, 0, code, msg)
	require.Contains(t, out, "signature: valid")
	require.Contains(t, out, "list:      default")
}

// TestDenylistCLIGolden rebuilds the golden files with the CLI: build,
// diff and apply produce them byte for byte.
func TestDenylistCLIGolden(t *testing.T) {
	dir := t.TempDir()
	key, pub := dlGolden("test.key"), dlGolden("test.pub")
	for v, created := range map[string]string{"1": "2026-11-23T04:01:00Z", "2": "2026-11-23T04:02:00Z", "3": "2026-11-23T04:03:00Z"} {
		out := filepath.Join(dir, "snapshot-v"+v+".fgdl")
		stdout, msg, code := dlRun(t, "", "denylist", "build", "--tokens", dlGolden("tokens-v"+v+".txt"), "--key", key,
			"--version", v, "--out", out, "--list-id", "test", "--created", created)
		require.Equal(t, 0, code, msg)
		require.Equal(t, "wrote "+out+": list test, version "+v+", 6 entries\n", stdout)
		require.Equal(t, dlReadFile(t, dlGolden("snapshot-v"+v+".fgdl")), dlReadFile(t, out), "snapshot v%s", v)
	}
	delta := filepath.Join(dir, "delta-v1-v2.fgdl")
	stdout, msg, code := dlRun(t, "", "denylist", "diff", "--from", dlGolden("snapshot-v1.fgdl"), "--to", dlGolden("snapshot-v2.fgdl"),
		"--key", key, "--out", delta)
	require.Equal(t, 0, code, msg)
	require.Equal(t, "wrote "+delta+": list test, version 1 → 2, 2 added, 2 removed\n", stdout)
	require.Equal(t, dlReadFile(t, dlGolden("delta-v1-v2.fgdl")), dlReadFile(t, delta))

	next := filepath.Join(dir, "next.fgdl")
	_, msg, code = dlRun(t, "", "denylist", "apply", "--list", dlGolden("snapshot-v1.fgdl"), "--delta", delta, "--pub", pub, "--out", next)
	require.Equal(t, 0, code, msg)
	require.Equal(t, dlReadFile(t, dlGolden("snapshot-v2.fgdl")), dlReadFile(t, next))
	next3 := filepath.Join(dir, "next3.fgdl")
	_, msg, code = dlRun(t, "", "denylist", "apply", "--list", next, "--delta", dlGolden("delta-v2-v3.fgdl"), "--pub", pub, "--out", next3)
	require.Equal(t, 0, code, msg)
	require.Equal(t, dlReadFile(t, dlGolden("snapshot-v3.fgdl")), dlReadFile(t, next3))

	// Tokens from standard input.
	out := filepath.Join(dir, "stdin.fgdl")
	_, msg, code = dlRun(t, string(dlReadFile(t, dlGolden("tokens-v1.txt"))), "denylist", "build", "--tokens", "-", "--key", key,
		"--version", "1", "--out", out, "--list-id", "test", "--created", "2026-11-23T04:01:00Z")
	require.Equal(t, 0, code, msg)
	require.Equal(t, dlReadFile(t, dlGolden("snapshot-v1.fgdl")), dlReadFile(t, out))
}

func TestDenylistInspect(t *testing.T) {
	out, msg, code := dlRun(t, "", "denylist", "inspect", dlGolden("delta-v1-v2.fgdl"))
	require.Equal(t, 0, code, msg)
	require.Equal(t, `file:      `+dlGolden("delta-v1-v2.fgdl")+`
kind:      delta
format:    1
list:      test
version:   1 → 2
created:   2026-11-23T04:02:00Z
entries:   6
adds:      2
removes:   2
size:      232 bytes
signature: unchecked
`, out)

	out, msg, code = dlRun(t, "", "denylist", "inspect", "--json", "--pub", dlGolden("test.pub"), dlGolden("snapshot-v3.fgdl"))
	require.Equal(t, 0, code, msg)
	var rep map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Equal(t, map[string]any{
		"file": dlGolden("snapshot-v3.fgdl"), "kind": "snapshot", "format_version": 1.0, "list_id": "test",
		"version": 3.0, "created": "2026-11-23T04:03:00Z", "entries": 6.0, "size": 184.0, "signature": "valid",
	}, rep)

	// Signed by another key: described, then exit 2.
	other := filepath.Join(t.TempDir(), "k")
	_, msg, code = dlRun(t, "", "keys", "denylist", "--out", other)
	require.Equal(t, 0, code, msg)
	out, msg, code = dlRun(t, "", "denylist", "inspect", "--pub", filepath.Join(other, "denylist.pub"), dlGolden("snapshot-v1.fgdl"))
	require.Equal(t, 2, code)
	require.Contains(t, out, "signature: invalid")
	require.Contains(t, msg, "bad signature")

	bad := filepath.Join(t.TempDir(), "bad.fgdl")
	require.NoError(t, os.WriteFile(bad, dlReadFile(t, dlGolden("snapshot-v1.fgdl"))[:100], 0o644))
	out, msg, code = dlRun(t, "", "denylist", "inspect", bad)
	require.Equal(t, 2, code)
	require.Empty(t, out)
	require.Contains(t, msg, "truncated")
	require.Contains(t, msg, "fetch or copy it again")
	_, _, code = dlRun(t, "", "denylist", "inspect")
	require.Equal(t, 2, code)
}

func TestDenylistCheck(t *testing.T) {
	tokens := dlTokens(t, "tokens-v2.txt")
	require.Len(t, tokens, 6)
	listed := tokens[1] // upper case in the file
	lower := strings.ToLower(tokens[0])
	absent := "00000000000000000000000000000000"
	out, msg, code := dlRun(t, "", "denylist", "check", "--list", dlGolden("snapshot-v2.fgdl"), "--pub", dlGolden("test.pub"),
		listed, lower, strings.ToUpper(lower), absent)
	require.Equal(t, 0, code, msg)
	require.Equal(t, listed+" denied\n"+lower+" denied\n"+strings.ToUpper(lower)+" denied\n"+absent+" allowed\n", out)

	// Token 0 left the list in version 2.
	tok0 := dlTokens(t, "tokens-v1.txt")[0]
	out, _, code = dlRun(t, "", "denylist", "check", "--list", dlGolden("snapshot-v2.fgdl"), "--pub", dlGolden("test.pub"), tok0)
	require.Equal(t, 0, code)
	require.Equal(t, tok0+" allowed\n", out)
	out, _, code = dlRun(t, "", "denylist", "check", "--list", dlGolden("snapshot-v1.fgdl"), "--pub", dlGolden("test.pub"), tok0)
	require.Equal(t, 0, code)
	require.Equal(t, tok0+" denied\n", out)

	tampered := filepath.Join(t.TempDir(), "t.fgdl")
	b := dlReadFile(t, dlGolden("snapshot-v2.fgdl"))
	b[100] ^= 1
	require.NoError(t, os.WriteFile(tampered, b, 0o644))
	other := filepath.Join(t.TempDir(), "k")
	_, _, code = dlRun(t, "", "keys", "denylist", "--out", other)
	require.Equal(t, 0, code)

	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"tampered list", []string{"--list", tampered, "--pub", dlGolden("test.pub"), absent}, "bad signature"},
		{"other key", []string{"--list", dlGolden("snapshot-v2.fgdl"), "--pub", filepath.Join(other, "denylist.pub"), absent}, "bad signature"},
		{"delta as list", []string{"--list", dlGolden("delta-v1-v2.fgdl"), "--pub", dlGolden("test.pub"), absent}, "wrong kind"},
		{"missing list", []string{"--list", "nope.fgdl", "--pub", dlGolden("test.pub"), absent}, "no such file"},
		{"private key as pub", []string{"--list", dlGolden("snapshot-v2.fgdl"), "--pub", dlGolden("test.key"), absent}, "denylist.pub"},
		{"bad token", []string{"--list", dlGolden("snapshot-v2.fgdl"), "--pub", dlGolden("test.pub"), "xyz"}, "invalid token"},
		{"no token", []string{"--list", dlGolden("snapshot-v2.fgdl"), "--pub", dlGolden("test.pub")}, "at least one TOKEN"},
		{"no list", []string{"--pub", dlGolden("test.pub"), absent}, "--list is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, msg, code := dlRun(t, "", append([]string{"denylist", "check"}, tt.args...)...)
			require.Equal(t, 2, code)
			require.Empty(t, out)
			require.Contains(t, msg, tt.msg)
		})
	}
}

func TestDenylistRefusals(t *testing.T) {
	dir := t.TempDir()
	key, pub := dlGolden("test.key"), dlGolden("test.pub")
	badTokens := filepath.Join(dir, "bad.txt")
	require.NoError(t, os.WriteFile(badTokens, []byte("# x\n00112233445566778899aabbccddeeff\n0011\n"), 0o644))
	truncated := filepath.Join(dir, "trunc.fgdl")
	require.NoError(t, os.WriteFile(truncated, dlReadFile(t, dlGolden("delta-v1-v2.fgdl"))[:150], 0o644))
	out := filepath.Join(dir, "out.fgdl")
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"apply gap", []string{"apply", "--list", dlGolden("snapshot-v1.fgdl"), "--delta", dlGolden("delta-v2-v3.fgdl"), "--pub", pub, "--out", out},
			"version gap: list is at version 1, delta is 2→3; apply the deltas in between first"},
		{"apply replay", []string{"apply", "--list", dlGolden("snapshot-v3.fgdl"), "--delta", dlGolden("delta-v1-v2.fgdl"), "--pub", pub, "--out", out},
			"replay of an older version"},
		{"apply truncated", []string{"apply", "--list", dlGolden("snapshot-v1.fgdl"), "--delta", truncated, "--pub", pub, "--out", out},
			"truncated file"},
		{"apply snapshot as delta", []string{"apply", "--list", dlGolden("snapshot-v1.fgdl"), "--delta", dlGolden("snapshot-v2.fgdl"), "--pub", pub, "--out", out},
			"wrong kind"},
		{"apply without out", []string{"apply", "--list", dlGolden("snapshot-v1.fgdl"), "--delta", dlGolden("delta-v1-v2.fgdl"), "--pub", pub},
			"--out is required"},
		{"diff backwards", []string{"diff", "--from", dlGolden("snapshot-v2.fgdl"), "--to", dlGolden("snapshot-v1.fgdl"), "--key", key, "--out", out},
			"pass the older snapshot to --from"},
		{"diff public key as key", []string{"diff", "--from", dlGolden("snapshot-v1.fgdl"), "--to", dlGolden("snapshot-v2.fgdl"), "--key", pub, "--out", out},
			"denylist.key"},
		{"build bad line", []string{"build", "--tokens", badTokens, "--key", key, "--version", "1", "--out", out},
			"line 3: denylist: invalid token"},
		{"build version 0", []string{"build", "--tokens", dlGolden("tokens-v1.txt"), "--key", key, "--out", out},
			"--version N is required"},
		{"build bad list id", []string{"build", "--tokens", dlGolden("tokens-v1.txt"), "--key", key, "--version", "1", "--out", out, "--list-id", "Metro"},
			"invalid list id"},
		{"build bad created", []string{"build", "--tokens", dlGolden("tokens-v1.txt"), "--key", key, "--version", "1", "--out", out, "--created", "yesterday"},
			"RFC 3339"},
		{"build bad version", []string{"build", "--tokens", dlGolden("tokens-v1.txt"), "--key", key, "--version", "one", "--out", out},
			"invalid argument"},
		{"unexpected argument", []string{"build", "extra"}, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, msg, code := dlRun(t, "", append([]string{"denylist"}, tt.args...)...)
			require.Equal(t, 2, code, msg)
			require.Contains(t, msg, tt.msg)
			require.NoFileExists(t, out, "nothing written on refusal")
		})
	}
}

// TestDenylistBinary runs the built binary for the exit statuses.
func TestDenylistBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the faregate binary")
	}
	bin := filepath.Join(t.TempDir(), "faregate")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	absent := "00000000000000000000000000000000"
	cmd := exec.Command(bin, "denylist", "check", "--list", dlGolden("snapshot-v2.fgdl"), "--pub", dlGolden("test.pub"), absent)
	out, err := cmd.Output()
	require.NoError(t, err)
	require.Equal(t, absent+" allowed\n", string(out))

	cmd = exec.Command(bin, "denylist", "check", "--list", dlGolden("snapshot-v2.fgdl"), "--pub", dlGolden("test.pub"), "nope")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 2, ee.ExitCode())
	require.Empty(t, out)
	require.True(t, strings.HasPrefix(stderr.String(), "faregate: denylist check: \"nope\": denylist: invalid token"), stderr.String())
}
