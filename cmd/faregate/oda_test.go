package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/oda"
	"github.com/faregate/faregate/oda/odatest"
)

var (
	odaBinOnce sync.Once
	odaBin     string
	odaBinErr  error
)

// faregateBinary builds the command once for the end-to-end tests.
func faregateBinary(t *testing.T) string {
	t.Helper()
	odaBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "faregate-oda-test")
		if err != nil {
			odaBinErr = err
			return
		}
		odaBin = filepath.Join(dir, "faregate")
		out, err := exec.Command("go", "build", "-o", odaBin, ".").CombinedOutput()
		if err != nil {
			odaBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, odaBinErr)
	return odaBin
}

func runFaregate(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(faregateBinary(t), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return o.String(), e.String(), code
}

type odaVector struct {
	Name       string      `json:"name"`
	CAPK       string      `json:"capk"`
	Input      string      `json:"input"`
	Transcript string      `json:"transcript"`
	Date       string      `json:"date"`
	TestKeys   bool        `json:"test_keys"`
	Want       oda.Summary `json:"want"`
}

// Every vector of testdata/oda/vectors.json, through the binary: the
// printed JSON is the golden output and the exit status follows ok.
func TestODAVerifyVectors(t *testing.T) {
	b, err := os.ReadFile("../../testdata/oda/vectors.json")
	require.NoError(t, err)
	var vs []odaVector
	require.NoError(t, json.Unmarshal(b, &vs))
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			args := []string{"oda", "verify", "--capk", filepath.Join("../../testdata", v.CAPK)}
			if v.Input != "" {
				args = append(args, "--input", filepath.Join("../../testdata", v.Input))
			} else {
				args = append(args, "--transcript", filepath.Join("../../testdata", v.Transcript))
			}
			if v.Date != "" {
				args = append(args, "--date", v.Date)
			}
			if v.TestKeys {
				args = append(args, "--test-keys")
			}
			stdout, stderr, code := runFaregate(t, args...)
			want, err := json.Marshal(v.Want)
			require.NoError(t, err)
			require.Equal(t, string(want)+"\n", stdout)
			if v.Want.OK {
				require.Equal(t, 0, code)
				require.Empty(t, stderr)
			} else {
				require.Equal(t, 1, code, stderr)
				require.Contains(t, stderr, "faregate: oda: "+v.Want.Stage+":")
			}
		})
	}
}

func TestODAVerifyUsage(t *testing.T) {
	dir := t.TempDir()
	n := 0
	write := func(name, content string) string {
		n++
		p := filepath.Join(dir, fmt.Sprint(n, "-", name))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}
	capk := "../../testdata/capk/generated.json"
	good := "../../testdata/oda/generated/cda.json"
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"no --capk", []string{"--input", good}, "--capk is required"},
		{"neither input nor transcript", []string{"--capk", capk}, "exactly one of --input and --transcript"},
		{"both input and transcript", []string{"--capk", capk, "--input", good, "--transcript", good}, "exactly one of"},
		{"missing CA file", []string{"--capk", filepath.Join(dir, "none.json"), "--input", good}, "no such file"},
		{"CA key with a wrong checksum", []string{"--capk", "../../testdata/capk/bad-checksum.json", "--input", good}, "checksum mismatch: A000000004/FB"},
		{"CA list with a duplicate", []string{"--capk", write("dup.json", dupList(t)), "--input", good}, "duplicate ca key: A000000003/92"},
		{"CA list not JSON", []string{"--capk", write("x.json", "nope"), "--input", good}, "ca key list"},
		{"input not JSON", []string{"--capk", capk, "--input", write("in.json", "{")}, "--input"},
		{"input with an unknown field", []string{"--capk", capk, "--input", write("in.json", `{"rid":"A000000003","dta":{}}`)}, `unknown field "dta"`},
		{"input without rid", []string{"--capk", capk, "--input", write("in.json", `{"data":{}}`)}, `"rid" or "aid" is required`},
		{"input with bad hex", []string{"--capk", capk, "--input", write("in.json", `{"rid":"A000000003","data":{"90":"XYZ"}}`)}, "data 90 is not hex"},
		{"input with a bad method", []string{"--capk", capk, "--input", write("in.json", `{"rid":"A000000003","method":"PDA"}`)}, `method "PDA"`},
		{"input with a bad date", []string{"--capk", capk, "--input", write("in.json", `{"rid":"A000000003","date":"23/11/2026"}`)}, "not YYYY-MM-DD"},
		{"bad --date", []string{"--capk", capk, "--input", good, "--date", "2026-13-01"}, "--date"},
		{"transcript not a list", []string{"--capk", capk, "--transcript", write("tr.json", `{}`)}, "transcript"},
		{"transcript without SELECT", []string{"--capk", capk, "--transcript", write("tr.json", `[{"command":"00B2010C00","response":"9000"}]`)}, "no application SELECT"},
		{"transcript with bad hex", []string{"--capk", capk, "--transcript", write("tr.json", `[{"command":"00B2Z","response":"9000"}]`)}, "not hex"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runFaregate(t, append([]string{"oda", "verify"}, tc.args...)...)
			require.Equal(t, 2, code, stderr)
			require.Empty(t, stdout)
			require.Contains(t, stderr, tc.msg)
		})
	}
}

func dupList(t *testing.T) string {
	b, err := os.ReadFile("../../testdata/capk/generated.json")
	require.NoError(t, err)
	var list []json.RawMessage
	require.NoError(t, json.Unmarshal(b, &list))
	out, err := json.Marshal(append(list, list[0]))
	require.NoError(t, err)
	return string(out)
}

// An input without a date is judged today; one whose certificates expired
// before today fails even though its own date is older.
func TestODAVerifyDate(t *testing.T) {
	in, err := os.ReadFile("../../testdata/oda/generated/cda.json")
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(in, &m))
	delete(m, "date")
	b, err := json.Marshal(m)
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "nodate.json")
	require.NoError(t, os.WriteFile(p, b, 0o644))
	stdout, _, code := runFaregate(t, "oda", "verify", "--capk", "../../testdata/capk/generated.json", "--input", p, "--test-keys")
	if time.Now().Year() <= 2030 { // the generated certificates expire 12/30
		require.Equal(t, 0, code, stdout)
	} else {
		require.Equal(t, 1, code, stdout)
	}
}

// keys emv writes a hierarchy that oda verify accepts once a card is
// personalised from it.
func TestKeysEMV(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	stdout, stderr, code := runFaregate(t, "keys", "emv", "--out", dir, "--ca-bits", "1024", "--issuer-bits", "896",
		"--icc-bits", "768", "--pan", "374245455400001", "--issuer-id", "3742", "--rid", "A000000025", "--index", "C9")
	require.Equal(t, 0, code, stderr)
	require.Len(t, strings.Fields(stdout), 6)
	for _, f := range []string{odatest.CAKeyFile, odatest.IssuerKeyFile, odatest.ICCKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}
	keys, err := oda.LoadKeyStore(filepath.Join(dir, odatest.CAListFile))
	require.NoError(t, err)
	require.True(t, keys.HasTestKeys())

	h, err := odatest.LoadHierarchy(dir)
	require.NoError(t, err)
	static := []byte{0x5F, 0x24, 0x03, 0x30, 0x12, 0x31}
	card, err := h.Personalise(static, [2]byte{1, 2})
	require.NoError(t, err)
	var issuer map[string]string
	b, err := os.ReadFile(filepath.Join(dir, odatest.IssuerCertFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &issuer))
	require.Equal(t, fmt.Sprintf("%X", card.IssuerCert), issuer["90"])

	data := map[string]string{"5A": "374245455400001F"}
	for tag, v := range card.Objects() {
		data[tag] = fmt.Sprintf("%X", v)
	}
	in, err := json.Marshal(map[string]any{"aid": "A00000002501", "date": "2026-11-23", "method": "SDA", "data": data, "static_data": fmt.Sprintf("%X", static)})
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "in.json")
	require.NoError(t, os.WriteFile(p, in, 0o644))
	stdout, stderr, code = runFaregate(t, "oda", "verify", "--capk", filepath.Join(dir, odatest.CAListFile), "--input", p, "--test-keys")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, `"ok":true`)

	_, stderr, code = runFaregate(t, "keys", "emv", "--out", dir)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "exists")
	_, stderr, code = runFaregate(t, "keys", "emv", "--out", dir, "--force", "--ca-bits", "1024", "--issuer-bits", "1024", "--icc-bits", "1024")
	require.Equal(t, 0, code, stderr)

	for _, args := range [][]string{
		{},
		{"--out", dir, "--rid", "A0"},
		{"--out", dir, "--index", "XYZ"},
		{"--out", dir, "--ca-bits", "1000"},
		{"--out", dir, "--exponent", "5"},
		{"--out", dir, "--issuer-bits", "1984"},
		{"--out", dir, "--pan", "12345"},
		{"--out", dir, "--issuer-expiry", "1330"},
	} {
		_, stderr, code := runFaregate(t, append([]string{"keys", "emv"}, args...)...)
		require.Equal(t, 2, code, "%v: %s", args, stderr)
	}
}
