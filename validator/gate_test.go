package validator_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io/fs"
	"path"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate"
	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/emv/cardsim"
	"github.com/faregate/faregate/oda"
	"github.com/faregate/faregate/validator"
)

// txDate is the transaction date of every test tap: certificates in the
// profiles expire in 2031 (good) or 2020 (faults).
var txDate = time.Date(2026, 11, 23, 8, 15, 0, 0, time.UTC)

func testKernel(t testing.TB) *emv.Kernel {
	t.Helper()
	v, err := cardsim.TestVerifier(oda.Options{})
	require.NoError(t, err)
	k, err := emv.NewKernel(emv.Config{
		Authenticator: v,
		Now:           func() time.Time { return txDate },
		Record:        true,
	})
	require.NoError(t, err)
	return k
}

func profiles(t testing.TB) []string {
	names, err := fs.Glob(faregate.TestData, "testdata/cards/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, names)
	return names
}

// TestProfiles taps every software card and checks the gate reaches the
// decision its profile expects, down to the ODA stage and reason.
func TestProfiles(t *testing.T) {
	k := testKernel(t)
	for _, name := range profiles(t) {
		t.Run(path.Base(name), func(t *testing.T) {
			card, err := cardsim.LoadFS(faregate.TestData, name, cardsim.Options{})
			require.NoError(t, err)
			want := card.Profile().Expect
			tap, err := k.Tap(context.Background(), card)
			require.NotNil(t, tap)
			d := validator.Rules{}.Decide(tap, err)
			require.Equal(t, want.Decision, string(d.Verdict), "decision (tap error: %v, oda: %+v)", err, tap.ODA)
			require.Equal(t, want.Reason, string(d.Reason), "reason (tap error: %v, oda: %+v)", err, tap.ODA)
			if want.ODAMethod != "" {
				require.Equal(t, want.ODAMethod, tap.ODA.Method)
			}
			if want.ODAStage != "" {
				require.Equal(t, want.ODAStage, string(tap.ODA.Stage()), "oda: %v", tap.ODA.Err)
			}
			if want.ODAReason != "" {
				require.Equal(t, want.ODAReason, string(tap.ODA.Reason()), "oda: %v", tap.ODA.Err)
			}
			if d.Verdict == validator.Open {
				require.True(t, tap.ODA.OK)
				require.NotEmpty(t, tap.ODA.Recovered.IssuerPKModulus, "recovered issuer key")
				require.Len(t, tap.Data["9F26"], 8, "the acquirer gets the cryptogram, also under CDA")
				require.Contains(t, fmt.Sprintf("%X", tap.Field55()), fmt.Sprintf("9F2608%X", tap.Data["9F26"]))
			}
		})
	}
}

// TestConcurrentTaps shares one kernel and one verifier (and its issuer key
// cache) between readers tapping at once: run under -race by .ci/run.
func TestConcurrentTaps(t *testing.T) {
	k := testKernel(t)
	names := []string{"visa-qvsdc", "mastercard-cda", "amex-cda", "discover-dda", "maestro-sda", "unionpay-qpboc"}
	errs := make(chan error, len(names)*4)
	for i := range 4 {
		for _, n := range names {
			go func() {
				card, err := cardsim.LoadFS(faregate.TestData, "testdata/cards/"+n+".json", cardsim.Options{})
				if err == nil {
					var tap emv.Tap
					for range 5 {
						if err = k.TapInto(context.Background(), card, &tap); err != nil || !tap.ODA.OK {
							err = fmt.Errorf("%s/%d: %v %v", n, i, err, tap.ODA.Err)
							break
						}
					}
				}
				errs <- err
			}()
		}
	}
	for range len(names) * 4 {
		require.NoError(t, <-errs)
	}
}

func TestGateDenyList(t *testing.T) {
	key := []byte("agency token key")
	visa, err := cardsim.LoadFS(faregate.TestData, "testdata/cards/visa-qvsdc.json", cardsim.Options{})
	require.NoError(t, err)
	mc, err := cardsim.LoadFS(faregate.TestData, "testdata/cards/mastercard-cda.json", cardsim.Options{})
	require.NoError(t, err)

	// Learn the Visa rider's token from one tap, then deny-list it.
	open, err := validator.NewGate(testKernel(t), validator.Rules{TokenKey: key})
	require.NoError(t, err)
	first := open.Tap(context.Background(), visa, nil)
	require.Equal(t, validator.Open, first.Decision.Verdict)
	require.NotEqual(t, emv.Token{}, first.Token)

	signKey := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	list, err := denylist.Sign(signKey, denylist.DefaultListID, 1, txDate, denylist.NewSetOfTokens([]denylist.Token{denylist.Token(first.Token)}))
	require.NoError(t, err)
	g, err := validator.NewGate(testKernel(t), validator.Rules{TokenKey: key, DenyList: list})
	require.NoError(t, err)

	var seen string
	r := g.Tap(context.Background(), visa, func(tap *emv.Tap) { seen = tap.Card.PAN.Masked() })
	require.Equal(t, validator.Decision{Verdict: validator.Reject, Reason: validator.ReasonDenied}, r.Decision)
	require.Equal(t, first.Token, r.Token)
	require.Equal(t, "476173******0010", seen)
	require.Equal(t, validator.Open, g.Tap(context.Background(), mc, nil).Decision.Verdict, "another rider passes")

	// A torn tap has no token and no decision to open.
	removed, err := cardsim.LoadFS(faregate.TestData, "testdata/cards/fault-card-removed.json", cardsim.Options{})
	require.NoError(t, err)
	torn := g.Tap(context.Background(), removed, nil)
	require.Equal(t, validator.Retry, torn.Decision.Verdict)

	_, err = validator.NewGate(testKernel(t), validator.Rules{DenyList: list})
	require.Error(t, err, "a deny list without the token key cannot work")
}

// TestGateStalePolicy: by default a stale deny list goes on deciding;
// StaleReject refuses every tap while it is stale.
func TestGateStalePolicy(t *testing.T) {
	visa, err := cardsim.LoadFS(faregate.TestData, "testdata/cards/visa-qvsdc.json", cardsim.Options{})
	require.NoError(t, err)
	stale := true
	rules := validator.Rules{TokenKey: []byte("k"), DenyList: denylist.Empty(denylist.DefaultListID), DenyListStale: func() bool { return stale }}
	keep, err := validator.NewGate(testKernel(t), rules)
	require.NoError(t, err)
	require.Equal(t, validator.Open, keep.Tap(context.Background(), visa, nil).Decision.Verdict)

	rules.StalePolicy = validator.StaleReject
	strict, err := validator.NewGate(testKernel(t), rules)
	require.NoError(t, err)
	require.Equal(t, validator.Decision{Verdict: validator.Reject, Reason: validator.ReasonDenyListStale},
		strict.Tap(context.Background(), visa, nil).Decision)
	stale = false
	require.Equal(t, validator.Open, strict.Tap(context.Background(), visa, nil).Decision.Verdict)
}
