//go:build pcsc

package reader_test

import (
	"context"
	"io/fs"
	"path"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate"
	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/emv/cardsim"
	"github.com/faregate/faregate/oda"
	"github.com/faregate/faregate/reader"
	"github.com/faregate/faregate/validator"
)

// Full taps: the emv kernel, unchanged, over a reader.Session, through
// scard → libpcsclite → pcscd → vpcd → the bridge → a cardsim card.

// txDate is the date of every test tap: the profiles' certificates expire
// in 2031 (good cards) or 2020 (faults).
var txDate = time.Date(2026, 11, 23, 8, 15, 0, 0, time.UTC)

func stack(t testing.TB) (vpcd, name string) {
	t.Helper()
	vpcd, name, skip := reader.IntegrationStack()
	if skip != "" {
		t.Skip(skip)
	}
	return vpcd, name
}

func testKernel(t testing.TB) *emv.Kernel {
	t.Helper()
	v, err := cardsim.TestVerifier(oda.Options{})
	require.NoError(t, err)
	k, err := emv.NewKernel(emv.Config{
		Authenticator: v,
		Now:           func() time.Time { return txDate },
	})
	require.NoError(t, err)
	return k
}

func loadCard(t testing.TB, file string) *cardsim.Card {
	t.Helper()
	c, err := cardsim.LoadFS(faregate.TestData, file, cardsim.Options{})
	require.NoError(t, err)
	return c
}

// TestTapEveryProfile taps every software card through the real stack: the
// good ones open, each fault is rejected with its reason, the card pulled
// away mid-tap is a torn tap (retry, nothing decided), and the card that is
// not a payment card (6A82 to SELECT PPSE) is rejected as such.
func TestTapEveryProfile(t *testing.T) {
	vpcd, name := stack(t)
	r, err := reader.Open(t.Context(), reader.Options{Name: name})
	require.NoError(t, err)
	defer r.Close()
	k := testKernel(t)
	files, err := fs.Glob(faregate.TestData, "testdata/cards/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(path.Base(file), func(t *testing.T) {
			card := loadCard(t, file)
			want := card.Profile().Expect
			p, err := reader.PresentVPCD(t.Context(), vpcd, card, nil)
			require.NoError(t, err)
			defer reader.WaitEmpty(t)
			defer p.Remove()

			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			s, err := r.WaitCard(ctx)
			require.NoError(t, err)
			defer s.Close()
			tap, err := k.Tap(ctx, s)
			require.NotNil(t, tap)
			d := validator.Rules{}.Decide(tap, err)
			require.Equal(t, want.Decision, string(d.Verdict), "decision (tap error: %v)", err)
			require.Equal(t, want.Reason, string(d.Reason), "reason (tap error: %v)", err)
			if want.ODAMethod != "" {
				require.Equal(t, want.ODAMethod, tap.ODA.Method)
			}
			if want.ODAStage != "" {
				require.Equal(t, want.ODAStage, string(tap.ODA.Stage()))
			}
			if want.ODAReason != "" {
				require.Equal(t, want.ODAReason, string(tap.ODA.Reason()))
			}
			switch d.Verdict {
			case validator.Open:
				require.NoError(t, err)
				require.True(t, tap.ODA.OK)
			case validator.Retry:
				require.ErrorIs(t, err, reader.ErrCardRemoved, "a torn tap, not a broken card")
				require.ErrorIs(t, err, emv.ErrCardRemoved)
				<-p.Done()
				require.ErrorIs(t, p.Err(), reader.ErrCardLeft)
			}
		})
	}
}

// TestTwoRidersOneGate is the gate's loop: wait for a card, tap, wait for
// it to leave, and again for the next rider's card.
func TestTwoRidersOneGate(t *testing.T) {
	vpcd, name := stack(t)
	r, err := reader.Open(t.Context(), reader.Options{Name: name})
	require.NoError(t, err)
	defer r.Close()
	k := testKernel(t)
	var seen []string
	for _, file := range []string{"testdata/cards/visa-qvsdc.json", "testdata/cards/mastercard-cda.json"} {
		card := loadCard(t, file)
		p, err := reader.PresentVPCD(t.Context(), vpcd, card, nil)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		s, err := r.WaitCard(ctx)
		require.NoError(t, err)
		tap, err := k.Tap(ctx, s)
		require.NoError(t, err)
		require.Equal(t, validator.Open, validator.Rules{}.Decide(tap, err).Verdict)
		seen = append(seen, string(tap.Application.Scheme))
		require.NoError(t, p.Remove())
		require.NoError(t, s.WaitRemoval(ctx))
		require.NoError(t, s.Close())
		cancel()
	}
	require.False(t, seen[0] == seen[1], "two different cards: %v", seen)
}

// BenchmarkTap is the latency of whole taps through the real stack, from
// a card in the field to the gate's decision: connect, kernel (PPSE,
// select, GPO, records, ODA), decide, disconnect. Run it with ≥ 200 taps:
//
//	go test -tags pcsc -run '^$' -bench BenchmarkTap -benchtime 300x ./reader/
//
// The last case leaves TCP_QUICKACK off on the card's socket, to show what
// it saves.
func BenchmarkTap(b *testing.B) {
	for _, bc := range []struct {
		name, profile string
		opts          reader.VPCDOptions
	}{
		{"visa-qvsdc", "visa-qvsdc", reader.VPCDOptions{}},
		{"mastercard-cda", "mastercard-cda", reader.VPCDOptions{}},
		{"visa-qvsdc-quickack=off", "visa-qvsdc", reader.VPCDOptions{NoQuickAck: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			vpcd, rname := stack(b)
			r, err := reader.Open(b.Context(), reader.Options{Name: rname})
			require.NoError(b, err)
			defer r.Close()
			k := testKernel(b)
			p, err := reader.PresentVPCD(b.Context(), vpcd, loadCard(b, "testdata/cards/"+bc.profile+".json"), &bc.opts)
			require.NoError(b, err)
			defer reader.WaitEmpty(b)
			defer p.Remove()
			// The first WaitCard also waits for pcscd to notice the card
			// (it polls the slot every 400 ms): keep that out of the numbers.
			s, err := r.WaitCard(b.Context())
			require.NoError(b, err)
			s.Close()
			var lat []time.Duration
			for b.Loop() {
				ctx, cancel := context.WithTimeout(b.Context(), 10*time.Second)
				start := time.Now()
				s, err := r.WaitCard(ctx)
				if err != nil {
					b.Fatal(err)
				}
				tap, err := k.Tap(ctx, s)
				if d := (validator.Rules{}).Decide(tap, err); d.Verdict != validator.Open {
					b.Fatalf("decision %v: %v", d, err)
				}
				s.Close()
				lat = append(lat, time.Since(start))
				cancel()
			}
			slices.Sort(lat)
			ms := func(p int) float64 {
				return float64(lat[min(len(lat)*p/100, len(lat)-1)]) / float64(time.Millisecond)
			}
			b.ReportMetric(ms(50), "p50-ms")
			b.ReportMetric(ms(99), "p99-ms")
			b.ReportMetric(float64(len(lat)), "taps")
		})
	}
}
