package validator_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/oda"
	"github.com/faregate/faregate/validator"
)

// TestRealVisaFDDA replays a real Visa Debit card's recorded qVSDC tap
// (testdata/real) through the gate's kernel — the terminal data are the
// recording terminal's (emv.Kernel.Replay) — and verifies its fDDA
// signature, ICC and issuer certificates under the live Visa CA key 09.
func TestRealVisaFDDA(t *testing.T) {
	b, err := os.ReadFile("../testdata/real/visa-debit-de.json")
	require.NoError(t, err)
	var tr emv.Transcript
	require.NoError(t, json.Unmarshal(b, &tr))
	live, err := oda.LoadKeyStore("../testdata/capk/live.json")
	require.NoError(t, err)

	tap := func(keys *oda.KeyStore) *emv.Tap {
		k, err := emv.NewKernel(emv.Config{Authenticator: oda.NewVerifier(keys, oda.Options{})})
		require.NoError(t, err)
		tap, err := k.Replay(context.Background(), tr)
		require.NoError(t, err)
		return tap
	}

	// The open-source list dates Visa's key 09 to 2022-12-31; the card was
	// read on 2023-03-01: the gate honours the key's expiry.
	got := tap(live)
	require.Equal(t, tapdata.MethodFDDA, got.ODA.Method)
	require.False(t, got.ODA.OK)
	require.Equal(t, "capk", string(got.ODA.Stage()))
	require.Equal(t, "expired", string(got.ODA.Reason()))

	// The same key as Visa publishes it today (no stale expiry): the real
	// card's whole chain verifies.
	key, ok := live.Lookup([]byte{0xA0, 0, 0, 0, 0x03}, 0x09)
	require.True(t, ok)
	key.Expiry = time.Time{}
	fresh, err := oda.NewKeyStore(key)
	require.NoError(t, err)
	got = tap(fresh)
	require.True(t, got.ODA.OK, "%v", got.ODA.Err)
	require.Len(t, got.ODA.Recovered.IssuerPKModulus, 176, "a 1984-bit CA certifies a 1408-bit issuer key")
	require.Len(t, got.ODA.Recovered.ICCPKModulus, 128)
	require.NotEmpty(t, got.ODA.Recovered.ICCDynamicNumber)
	d := validator.Rules{}.Decide(got, nil)
	require.Equal(t, validator.Open, d.Verdict, "on the day it was read, 2023-03-01, the card (expiring July 2025) opens the gate")
}
