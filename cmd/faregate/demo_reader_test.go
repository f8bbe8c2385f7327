package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/emv/cardsim"
	"github.com/faregate/faregate/reader"
)

// TestDemoReaderWithoutPCSC: without the pcsc build tag, --reader is a
// usage error (exit 2) that says how to build with it, before anything
// starts.
func TestDemoReaderWithoutPCSC(t *testing.T) {
	if reader.PCSC {
		t.Skip("built with -tags pcsc: TestDemoReaderVPCD covers --reader")
	}
	for _, args := range [][]string{
		{"demo", "--reader", "Virtual PCD 00 00"},
		{"demo", "--reader", ""},
	} {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(args)
		err := root.ExecuteContext(t.Context())
		require.Equal(t, 2, exitCode(err), "%v", err)
		require.ErrorContains(t, err, "-tags pcsc", "says how to build with PC/SC support")
		require.Empty(t, out.String(), "nothing started")
	}
}

func TestDemoReaderUsage(t *testing.T) {
	require.NoError(t, readerUsage(readerOptions{}, false), "no --reader: nothing to check")
	err := readerUsage(readerOptions{on: true, wait: 0}, true)
	require.Error(t, err)
	require.Equal(t, 2, exitCode(err))
	if reader.PCSC {
		require.ErrorContains(t, readerUsage(readerOptions{on: true, wait: 1}, false), "--network")
		require.ErrorContains(t, err, "--reader-wait")
	}
}

// TestDemoCAPKAddsToTestKeys: the demo's --capk adds a real scheme's CA
// keys to the software cards' test list (a real card on --reader needs
// them, the riders need the test ones); elsewhere --capk replaces it.
func TestDemoCAPKAddsToTestKeys(t *testing.T) {
	const live = "../../testdata/capk/live.json"
	test, err := cardsim.TestKeys()
	require.NoError(t, err)
	demo := gateFlags{demo: true, capk: live}
	c, err := demo.config(t.Context())
	require.NoError(t, err)
	require.True(t, c.TestKeys)
	require.NotEmpty(t, c.Revoked, "the software cards' revocations")
	_, ok := c.Keys.Lookup([]byte{0xA0, 0, 0, 0, 0x03}, 0x09)
	require.True(t, ok, "--capk's Visa key")
	for _, k := range test.Keys() {
		_, ok := c.Keys.Lookup(k.RID[:], k.Index)
		require.True(t, ok, "test key %X/%02X", k.RID, k.Index)
	}
	tapCmd := gateFlags{capk: live}
	c, err = tapCmd.config(t.Context())
	require.NoError(t, err)
	require.False(t, c.Keys.HasTestKeys(), "faregate tap --capk trusts the file alone")

	out, code := run(t, "demo", "--network=false", "--capk", live)
	require.Equal(t, 0, code, "the software cards still reach their outcomes: %s", out)
}
