package validator_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate"
	"github.com/faregate/faregate/emv/cardsim"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/faregate/faregate/validator"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time          { return c.t }
func (c *clock) Advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock(t time.Time) *clock        { return &clock{t: t} }
func card(t testing.TB, name string) *cardsim.Card {
	t.Helper()
	c, err := cardsim.LoadFS(faregate.TestData, "testdata/cards/"+name+".json", cardsim.Options{})
	require.NoError(t, err)
	return c
}

// panPattern finds the PANs in a card profile: tag 5A in a record (a
// two-element array), or the digits before the separator of track 2 (57,
// 9F6B).
var panPattern = regexp.MustCompile(`"(?:5A|57|9F6B)"\s*[,:]\s*"([0-9]{12,19})`)

// testPANs are the clear PANs of every software card profile: what a scan
// of the gate's disk, logs and metrics must never find.
func testPANs(t testing.TB) []string {
	t.Helper()
	seen := map[string]bool{}
	var pans []string
	for _, name := range profiles(t) {
		b, err := fs.ReadFile(faregate.TestData, name)
		require.NoError(t, err)
		for _, m := range panPattern.FindAllSubmatch(b, -1) {
			if p := string(m[1]); !seen[p] {
				seen[p] = true
				pans = append(pans, p)
			}
		}
	}
	require.GreaterOrEqual(t, len(pans), 6, "a PAN per scheme at least")
	return pans
}

// requireNoPAN fails when any file in dir holds a software card's PAN.
func requireNoPAN(t testing.TB, pans []string, dir string) {
	t.Helper()
	n := 0
	require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		for _, p := range pans {
			require.False(t, bytes.Contains(b, []byte(p)), "%s holds the PAN %s…", path, p[:6])
		}
		return nil
	}))
	require.NotZero(t, n)
}

var (
	testTokenKey = []byte("agency token key for the tests..")
	testVault    = func() *ecdh.PrivateKey {
		k, err := tap.GenerateVaultKey(bytes.NewReader(bytes.Repeat([]byte{9}, 32)))
		if err != nil {
			panic(err)
		}
		return k
	}()
)

type stationFixture struct {
	st      *validator.Station
	journal *validator.Journal
	clock   *clock
	reg     *prometheus.Registry
	path    string
}

func newStation(t testing.TB, dir string, passback time.Duration, loc tap.Location) *stationFixture {
	t.Helper()
	f := &stationFixture{clock: newClock(txDate), reg: prometheus.NewRegistry(), path: filepath.Join(dir, "journal.db")}
	j, err := validator.OpenJournal(context.Background(), f.path, validator.JournalOptions{Now: f.clock.Now})
	require.NoError(t, err)
	t.Cleanup(func() { j.Close() })
	f.journal = j
	g, err := validator.NewGate(testKernel(t), validator.Rules{TokenKey: testTokenKey})
	require.NoError(t, err)
	m, err := validator.NewMetrics(f.reg)
	require.NoError(t, err)
	f.st, err = validator.NewStation(context.Background(), validator.StationOptions{
		GateID: "G-1", Location: loc, Zone: time.FixedZone("CET", 3600), Passback: passback,
		Gate: g, Journal: j, Vault: testVault.PublicKey(), Metrics: m, Now: f.clock.Now,
	})
	require.NoError(t, err)
	return f
}

func TestStationJournalsBeforeAnswering(t *testing.T) {
	ctx := context.Background()
	f := newStation(t, t.TempDir(), 0, tap.Location{Operator: "TfL", Stop: "Bank", Role: tap.RoleEntry, Group: "BANK"})
	out := f.st.Tap(ctx, card(t, "visa-qvsdc"))
	require.Equal(t, validator.Open, out.Verdict)
	require.Equal(t, "Go ahead", out.Message)
	require.NotNil(t, out.Record)
	r := out.Record
	require.Equal(t, uint64(1), r.Seq)
	require.Equal(t, 7, int(r.ID.Version()))
	require.Equal(t, "476173******0010", r.MaskedPAN)
	require.Equal(t, "visa", r.Scheme)
	require.Equal(t, "2026-11-23T09:15:00+01:00", r.LocalTime)
	require.Equal(t, rider.NewToken(testTokenKey, "4761739001010010", "01"), r.Token)
	require.NoError(t, r.Validate())

	// The sealed card data opens only in the vault, for this tap.
	cd, err := tap.OpenCardData(testVault, "G-1", r.ID, r.Sealed)
	require.NoError(t, err)
	require.Equal(t, "4761739001010010", cd.PAN)
	require.NotEmpty(t, cd.EMV)
	require.NotEmpty(t, cd.Track2)
	_, err = tap.OpenCardData(testVault, "G-1", uuid.Must(uuid.NewV7()), r.Sealed)
	require.ErrorIs(t, err, tap.ErrOpen)

	// What the station said is what the journal holds, after a reopen.
	require.NoError(t, f.journal.Close())
	j, err := validator.OpenJournal(ctx, f.path, validator.JournalOptions{})
	require.NoError(t, err)
	defer j.Close()
	var got []tap.Record
	require.NoError(t, j.Each(ctx, false, func(r *tap.Record, _ bool) error { got = append(got, *r); return nil }))
	require.Len(t, got, 1)
	require.Equal(t, r.ID, got[0].ID)
	require.Equal(t, r.Sealed, got[0].Sealed)
	require.Equal(t, uint64(2), j.NextSeq())
}

func TestStationPANCheck(t *testing.T) {
	// The literal PAN in the test above is the profile's.
	require.Contains(t, testPANs(t), "4761739001010010")
}

func TestStationRefusalsAndPassback(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f := newStation(t, dir, 30*time.Second, tap.Location{Role: tap.RoleExit, Group: "A"})
	visa := card(t, "visa-qvsdc")

	first := f.st.Tap(ctx, visa)
	require.Equal(t, validator.Open, first.Verdict)
	require.Equal(t, "Goodbye", first.Message, "a tap-off gate")

	f.clock.Advance(10 * time.Second)
	again := f.st.Tap(ctx, visa)
	require.Equal(t, validator.Reject, again.Verdict)
	require.Equal(t, validator.ReasonAlreadyTapped, again.Reason)
	require.Equal(t, "Already tapped", again.Message)
	require.NotNil(t, again.Record, "refusals are journaled")
	require.Empty(t, again.Record.Sealed, "without card data")
	require.Equal(t, first.Token, again.Token)

	f.clock.Advance(25 * time.Second)
	require.Equal(t, validator.Open, f.st.Tap(ctx, visa).Verdict, "after the pass-back time")

	bad := f.st.Tap(ctx, card(t, "fault-bad-sdad"))
	require.Equal(t, validator.Reject, bad.Verdict)
	require.Equal(t, validator.ReasonODAFailed, bad.Reason)
	require.Equal(t, "sdad", bad.Record.ODA.Stage)
	require.Empty(t, bad.Record.Sealed)

	torn := f.st.Tap(ctx, card(t, "fault-card-removed"))
	require.Equal(t, validator.Retry, torn.Verdict)
	require.Equal(t, "Tap again", torn.Message)
	require.Nil(t, torn.Record, "a torn tap is not journaled")

	st := f.journal.Stats()
	require.Equal(t, validator.JournalStats{Taps: 4, Opened: 2, Unsent: 4, OldestUnsent: &first.Record.Time}, st)

	// A restarted station remembers the pass-back window from the journal.
	f.clock.Advance(5 * time.Second)
	g, err := validator.NewGate(testKernel(t), validator.Rules{TokenKey: testTokenKey})
	require.NoError(t, err)
	st2, err := validator.NewStation(ctx, validator.StationOptions{
		GateID: "G-1", Location: tap.Location{Group: "A"}, Passback: 30 * time.Second,
		Gate: g, Journal: f.journal, Vault: testVault.PublicKey(), Now: f.clock.Now,
	})
	require.NoError(t, err)
	require.Equal(t, validator.ReasonAlreadyTapped, st2.Tap(ctx, visa).Reason)
	st3, err := validator.NewStation(ctx, validator.StationOptions{
		GateID: "G-1", Location: tap.Location{Group: "B"}, Passback: 30 * time.Second,
		Gate: g, Journal: f.journal, Vault: testVault.PublicKey(), Now: f.clock.Now,
	})
	require.NoError(t, err)
	require.Equal(t, validator.Open, st3.Tap(ctx, visa).Verdict, "another pass-back group")

	// Metrics: taps by decision, reason and scheme; commit latencies.
	require.Equal(t, 1.0, metricValue(t, f.reg, "faregate_taps_total", "reject", "already_tapped", "visa"))
	require.Equal(t, 2.0, metricValue(t, f.reg, "faregate_taps_total", "open", "ok", "visa"))
	require.Equal(t, 1.0, metricValue(t, f.reg, "faregate_taps_total", "retry", "card_removed", "mastercard"))
	require.Equal(t, 4.0, metricValue(t, f.reg, "faregate_journal_commit_seconds"))
	require.Equal(t, 6.0, metricValue(t, f.reg, "faregate_journal_backlog"), "the journal the station shares")
	f.clock.Advance(time.Minute)
	require.InDelta(t, 100.0, metricValue(t, f.reg, "faregate_journal_oldest_unsent_age_seconds"), 0.001)
	requireNoPAN(t, testPANs(t), dir)
}

func TestMessages(t *testing.T) {
	for _, c := range []struct {
		v    validator.Verdict
		r    validator.Reason
		want string
	}{
		{validator.Open, validator.ReasonOK, "Go ahead"},
		{validator.Reject, validator.ReasonDenied, "Card declined – see staff"},
		{validator.Reject, "card_declined", "Card declined – see staff"},
		{validator.Reject, validator.ReasonAlreadyTapped, "Already tapped"},
		{validator.Retry, "card_removed", "Tap again"},
		{validator.Reject, validator.ReasonOutOfService, "Gate closed – use another gate"},
		{validator.Reject, validator.ReasonDenyListStale, "Gate closed – use another gate"},
		{validator.Reject, validator.ReasonODAFailed, "Card not accepted – see staff"},
		{validator.Reject, validator.ReasonCardExpired, "Card expired – use another card"},
	} {
		require.Equal(t, c.want, validator.Message(c.v, c.r, tap.RoleEntry), "%s/%s", c.v, c.r)
	}
}

// metricValue is the value of the metric name whose label values are
// labels (in label-name order).
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var vals []string
			for _, l := range m.GetLabel() {
				vals = append(vals, l.GetValue())
			}
			if strings.Join(vals, "|") != strings.Join(labels, "|") {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

// TestStationJournalFull: a tap the journal cannot take is refused, never
// opened for.
func TestStationJournalFull(t *testing.T) {
	ctx := context.Background()
	clk := newClock(txDate)
	j, err := validator.OpenJournal(ctx, filepath.Join(t.TempDir(), "journal.db"), validator.JournalOptions{MaxBytes: 1})
	require.NoError(t, err)
	defer j.Close()
	g, err := validator.NewGate(testKernel(t), validator.Rules{TokenKey: testTokenKey})
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	m, err := validator.NewMetrics(reg)
	require.NoError(t, err)
	st, err := validator.NewStation(ctx, validator.StationOptions{
		GateID: "G-1", Gate: g, Journal: j, Vault: testVault.PublicKey(), Metrics: m, Now: clk.Now,
	})
	require.NoError(t, err)
	out := st.Tap(ctx, card(t, "visa-qvsdc"))
	require.Equal(t, validator.Reject, out.Verdict)
	require.Equal(t, validator.ReasonOutOfService, out.Reason)
	require.Equal(t, "Gate closed – use another gate", out.Message)
	require.ErrorIs(t, out.Err, validator.ErrJournalFull)
	require.Nil(t, out.Record)
	require.Equal(t, 1.0, metricValue(t, reg, "faregate_journal_errors_total"))
	require.Equal(t, 1.0, metricValue(t, reg, "faregate_taps_total", "reject", "out_of_service", "visa"))
}
