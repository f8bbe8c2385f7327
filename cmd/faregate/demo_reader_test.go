package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

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
