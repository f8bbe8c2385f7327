package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBackendConfigFile(t *testing.T) {
	tests := []struct {
		name, file string
		args       []string
		want       map[string]string // flag -> value after the file
		err        string
	}{
		{name: "values of each kind", file: `{"listen": "127.0.0.1:9000", "grace": "3h", "no-settle": true, "acquirer-timeout": "2s"}`,
			want: map[string]string{"listen": "127.0.0.1:9000", "grace": "3h0m0s", "no-settle": "true"}},
		{name: "the command line wins", file: `{"listen": "127.0.0.1:9000", "data": "/srv/a"}`, args: []string{"--listen", "127.0.0.1:7"},
			want: map[string]string{"listen": "127.0.0.1:7", "data": "/srv/a"}},
		{name: "BOM", file: "\ufeff{\"data\": \"/srv/b\"}", want: map[string]string{"data": "/srv/b"}},
		{name: "unknown setting", file: `{"listne": "x"}`, err: `unknown setting "listne"`},
		{name: "config in config", file: `{"config": "other.json"}`, err: `unknown setting "config"`},
		{name: "duplicate key", file: `{"data": "a", "data": "b"}`, err: `duplicate key "data"`},
		{name: "a list for a repeatable flag", file: `{"qr-issuer": ["old1.pub", "old2.pub"]}`,
			want: map[string]string{"qr-issuer": "[old1.pub,old2.pub]"}},
		{name: "a list for a flag given once", file: `{"data": ["a"]}`, err: `"data": a list, but --data is given once`},
		{name: "a list of numbers", file: `{"qr-issuer": [1]}`, err: `"qr-issuer": want a list of strings`},
		{name: "wrong kind", file: `{"data": {"a": 1}}`, err: `"data": want a string, number or boolean`},
		{name: "bad value", file: `{"grace": "soon"}`, err: `"grace"`},
		{name: "not an object", file: `[1]`, err: "--config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "backend.json")
			require.NoError(t, os.WriteFile(path, []byte(tc.file), 0o600))
			cmd := newBackendCmd()
			require.NoError(t, cmd.ParseFlags(tc.args))
			err := applyConfigFile(context.Background(), cmd, path)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.Equal(t, 2, exitCode(err), "a bad config file is a usage error")
				return
			}
			require.NoError(t, err)
			for name, v := range tc.want {
				require.Equal(t, v, cmd.Flags().Lookup(name).Value.String(), name)
			}
		})
	}
}

// TestDeployBackendConfig: the example config in deploy/ names only real
// settings and starts the back office's flag parsing cleanly.
func TestDeployBackendConfig(t *testing.T) {
	cmd := newBackendCmd()
	require.NoError(t, applyConfigFile(context.Background(), cmd, "../../deploy/backend.json"))
	require.Equal(t, "/var/lib/faregate", cmd.Flags().Lookup("data").Value.String())
	require.Equal(t, "2h0m0s", cmd.Flags().Lookup("grace").Value.String())
}
