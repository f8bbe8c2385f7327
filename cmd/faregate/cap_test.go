package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files")

const capExamples = "../../testdata/capping"

// runCLI runs faregate in-process and returns stdout and the exit code.
func runCLI(t *testing.T, args ...string) (string, int, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	code := 0
	if err != nil {
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
	}
	return out.String(), code, err
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file (go test ./cmd/faregate -run Cap -update)")
	require.Equal(t, string(want), got)
}

// Every published example through the CLI, against golden JSON (whose
// totals the capping package checks against hand-computed expectations).
func TestCapExamplesJSON(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(capExamples, "*", "rules.json"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, rules := range dirs {
		dir := filepath.Dir(rules)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			out, code, err := runCLI(t, "cap", "--rules", rules, "--taps", filepath.Join(dir, "taps.csv"), "--json")
			require.NoError(t, err)
			require.Equal(t, 0, code)
			golden(t, filepath.Join(dir, "want.json"), out)

			var doc struct {
				Currency string `json:"currency"`
				Total    string `json:"total"`
				Riders   []struct {
					Token string `json:"token"`
					Total string `json:"total"`
					Legs  []struct {
						Time, Mode, Fare, Charged string
						CappedBy                  *string `json:"capped_by"`
					} `json:"legs"`
					Days []struct {
						ServiceDay string `json:"service_day"`
						Charged    string `json:"charged"`
					} `json:"days"`
					Settlements []struct{ Run, Charged string } `json:"settlements"`
					CapsReached []string                        `json:"caps_reached"`
				} `json:"riders"`
			}
			require.NoError(t, json.Unmarshal([]byte(out), &doc))
			require.NotEmpty(t, doc.Currency)
			for _, r := range doc.Riders {
				require.NotEmpty(t, r.Legs)
				require.NotEmpty(t, r.Days)
				require.NotEmpty(t, r.Settlements)
				require.NotNil(t, r.CapsReached)
				for _, l := range r.Legs {
					require.NotNil(t, l.CappedBy)
				}
			}
		})
	}
}

func TestCapTable(t *testing.T) {
	dir := filepath.Join(capExamples, "tfl")
	out, code, err := runCLI(t, "cap", "--rules", filepath.Join(dir, "rules.json"), "--taps", filepath.Join(dir, "taps.csv"))
	require.NoError(t, err)
	require.Equal(t, 0, code)
	golden(t, filepath.Join("testdata", "cap-tfl.txt"), out)
}

func TestCapHeaderOnly(t *testing.T) {
	taps := filepath.Join(t.TempDir(), "taps.csv")
	require.NoError(t, os.WriteFile(taps, []byte("token,time,mode,category,fare,zones,received\n"), 0o644))
	rules := filepath.Join(capExamples, "seed", "rules.json")
	out, code, err := runCLI(t, "cap", "--rules", rules, "--taps", taps, "--json")
	require.NoError(t, err)
	require.Equal(t, 0, code)
	require.JSONEq(t, `{"currency":"USD","total":"0.00","riders":[]}`, out)
	out, _, err = runCLI(t, "cap", "--rules", rules, "--taps", taps)
	require.NoError(t, err)
	require.Contains(t, out, "total 0.00 USD (0 riders, 0 taps)")
}

func TestCapBadInput(t *testing.T) {
	tmp := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(tmp, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	good := filepath.Join(capExamples, "seed", "rules.json")
	goodTaps := filepath.Join(capExamples, "seed", "taps.csv")
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"missing flags", []string{"cap"}, 2, "--rules and --taps are required"},
		{"missing rules file", []string{"cap", "--rules", filepath.Join(tmp, "nope.json"), "--taps", goodTaps}, 2, "no such file"},
		{"bad rules", []string{"cap", "--rules", write("r.json", "{\n\"currency\": \"USD\",\n\"time_zone\": \"UTC\",\n\"caps\": [{\"id\": \"d\", \"amount\": \"-1\", \"period\": {\"kind\": \"service_day\"}}]\n}"), "--taps", goodTaps}, 2, "rules line 4: caps[0] \"d\": amount: invalid amount"},
		{"bad taps", []string{"cap", "--rules", good, "--taps", write("t.csv", "token,time\na,2024-03-04T08:00:00Z\nb,not-a-time\n")}, 2, "taps line 3: time"},
		{"unknown column", []string{"cap", "--rules", good, "--taps", write("u.csv", "token,time,price\n")}, 2, "taps line 1"},
		{"extra argument", []string{"cap", "x"}, 2, "unexpected argument"},
		{"unknown flag", []string{"cap", "--rulez", good}, 2, "unknown flag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, code, err := runCLI(t, tc.args...)
			require.Error(t, err)
			require.Equal(t, tc.code, code, err.Error())
			require.ErrorContains(t, err, tc.msg)
		})
	}
}
