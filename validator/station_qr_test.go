package validator_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/qr"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/faregate/faregate/validator"
)

func qrKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("validator qr test key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// qrDevice issues a device credential for the rider name, valid for a
// day around txDate.
func qrDevice(t testing.TB, issuer ed25519.PrivateKey, name string) *qr.Device {
	t.Helper()
	dk := qrKey("device " + name)
	cred := qr.Credential{Token: rider.NewToken(testTokenKey, name, "00"), Device: qr.DeviceKey(dk.Public().(ed25519.PublicKey)),
		NotBefore: txDate.Add(-12 * time.Hour), NotAfter: txDate.Add(12 * time.Hour), Category: qr.Child}
	require.NoError(t, cred.Sign(issuer))
	return &qr.Device{Credential: cred, Key: dk}
}

func qrText(t testing.TB, d *qr.Device, at time.Time, counter uint32) string {
	t.Helper()
	b, err := d.Code(at, counter, nil)
	require.NoError(t, err)
	return qr.Text(b)
}

type tokenSet map[rider.Token]bool

func (s tokenSet) Contains(t rider.Token) bool { return s[t] }

type qrFixture struct {
	st    *validator.Station
	j     *validator.Journal
	reg   *prometheus.Registry
	clock *clock
	stale bool
}

// newQRStation opens a QR-only station on the journal at path.
func newQRStation(t testing.TB, path string, c *clock, deny tokenSet) *qrFixture {
	t.Helper()
	f := &qrFixture{reg: prometheus.NewRegistry(), clock: c}
	j, err := validator.OpenJournal(context.Background(), path, validator.JournalOptions{Now: c.Now})
	require.NoError(t, err)
	t.Cleanup(func() { j.Close() })
	f.j = j
	is, err := qr.NewIssuers(qrKey("issuer").Public().(ed25519.PublicKey))
	require.NoError(t, err)
	g, err := qr.NewGate(qr.GateOptions{Issuers: is, DenyList: deny, Now: c.Now})
	require.NoError(t, err)
	m, err := validator.NewMetrics(f.reg)
	require.NoError(t, err)
	require.NoError(t, validator.RegisterQRMetrics(f.reg, g))
	f.st, err = validator.NewStation(context.Background(), validator.StationOptions{
		GateID: "G-QR", Location: tap.Location{Stop: "Bank", Group: "BANK", Role: tap.RoleEntry}, Passback: time.Minute,
		QR: g, QRStale: func() bool { return f.stale }, Journal: j, Vault: testVault.PublicKey(), Metrics: m, Now: c.Now,
	})
	require.NoError(t, err)
	return f
}

func TestStationQR(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal.db")
	c := newClock(txDate)
	alice, bob := qrDevice(t, qrKey("issuer"), "alice"), qrDevice(t, qrKey("issuer"), "bob")
	mallory := qrDevice(t, qrKey("not the issuer"), "mallory")
	// Forged: signed by another key under the issuer's key id.
	mallory.Credential.KeyID = qr.KeyIDOf(qrKey("issuer").Public().(ed25519.PublicKey))
	stranger := qrDevice(t, qrKey("not the issuer"), "stranger")
	tampered, err := bob.Code(c.t, 9, nil)
	require.NoError(t, err)
	tampered[len(tampered)-1] ^= 1
	deny := tokenSet{}
	f := newQRStation(t, path, c, deny)

	first := qrText(t, alice, c.t.Add(-2*time.Second), 1)
	o := f.st.TapQR(ctx, first)
	require.Equal(t, validator.Open, o.Verdict, o.Reason)
	require.Equal(t, "qr", o.Scheme)
	require.Equal(t, alice.Credential.Token, o.Token)
	require.Equal(t, "Go ahead", o.Message)
	require.NotNil(t, o.Record)
	require.Equal(t, tap.KindQR, o.Record.Kind)
	require.True(t, o.Record.Provisional)
	require.Equal(t, "child", o.Record.Category)
	want, err := qr.Parse(first)
	require.NoError(t, err)
	require.Equal(t, want.Payload(), o.Record.QR)

	// The same code again: a replay at this gate (before pass-back looks).
	o = f.st.TapQR(ctx, first)
	require.Equal(t, validator.Reason("replay"), o.Reason)
	require.Equal(t, "Code already used – show a fresh code", o.Message)
	// An older counter of the same device, never shown here: refused too.
	o = f.st.TapQR(ctx, qrText(t, alice, c.t, 0))
	require.Equal(t, validator.Reason("replay"), o.Reason)

	type step struct {
		text    string
		reason  validator.Reason
		token   rider.Token
		journal bool
	}
	c.Advance(90 * time.Second) // past pass-back
	steps := []step{
		{first, "clock_skew", alice.Credential.Token, true},
		{qrText(t, mallory, c.t, 1), "bad_issuer_signature", rider.Token{}, true},
		{qrText(t, stranger, c.t, 1), "unknown_key_id", rider.Token{}, true},
		{qr.Text(tampered), "bad_device_signature", rider.Token{}, true},
		{qrText(t, bob, c.t.Add(61*time.Second), 1), "clock_skew", bob.Credential.Token, true},
		{qrText(t, bob, c.t.Add(-61*time.Second), 1), "clock_skew", bob.Credential.Token, true},
		{"https://example.com/not-a-fare-code", "malformed", rider.Token{}, false},
		{qrText(t, bob, c.t, 2)[:40], "malformed", rider.Token{}, false},
	}
	for i, s := range steps {
		o := f.st.TapQR(ctx, s.text)
		require.Equal(t, validator.Reject, o.Verdict, "step %d", i)
		require.Equal(t, s.reason, o.Reason, "step %d", i)
		require.Equal(t, s.token, o.Token, "step %d", i)
		require.Equal(t, s.journal, o.Record != nil, "step %d", i)
		require.NotEmpty(t, o.Message)
		if o.Record != nil {
			require.NoError(t, o.Record.Validate() /* seq 0 */, "step %d", i)
		}
	}
	// Edges of the window are accepted: ±60 s.
	o = f.st.TapQR(ctx, qrText(t, bob, c.t.Add(60*time.Second), 3))
	require.Equal(t, validator.Open, o.Verdict, o.Reason)
	// Pass-back applies to QR tokens: a fresh code of the same rider.
	o = f.st.TapQR(ctx, qrText(t, bob, c.t.Add(-60*time.Second), 4))
	require.Equal(t, validator.ReasonAlreadyTapped, o.Reason)
	// A deny-listed token is refused revoked.
	deny[alice.Credential.Token] = true
	o = f.st.TapQR(ctx, qrText(t, alice, c.t, 2))
	require.Equal(t, validator.Reason("revoked"), o.Reason)
	require.Equal(t, "Code declined – see staff", o.Message)
	delete(deny, alice.Credential.Token)
	// A stale deny list under StaleReject refuses without using the counter up.
	f.stale = true
	o = f.st.TapQR(ctx, qrText(t, alice, c.t, 3))
	require.Equal(t, validator.ReasonDenyListStale, o.Reason)
	require.True(t, o.Token.IsZero(), "not authenticated: no token")
	f.stale = false
	o = f.st.TapQR(ctx, qrText(t, alice, c.t, 3))
	require.Equal(t, validator.Open, o.Verdict, o.Reason)
	alice3 := qrText(t, alice, c.t, 3)

	require.Equal(t, 2.0, metricValue(t, f.reg, "faregate_taps_total", "reject", "malformed", "qr"), "malformed scans are counted")
	require.Equal(t, 3.0, metricValue(t, f.reg, "faregate_taps_total", "open", "ok", "qr"))
	require.Equal(t, 2.0, metricValue(t, f.reg, "faregate_qr_replay_devices"))
	require.Equal(t, 3.0, metricValue(t, f.reg, "faregate_qr_refused_total", "clock_skew"))

	n := 0
	require.NoError(t, f.j.Each(ctx, false, func(r *tap.Record, _ bool) error {
		n++
		require.Equal(t, tap.KindQR, r.Kind)
		require.NotEmpty(t, r.QR)
		require.NoError(t, r.Validate())
		return nil
	}))
	require.Equal(t, 14, n, "every tap but the two malformed scans")

	// After a restart the replay memory is back: alice's code is refused.
	require.NoError(t, f.j.Close())
	c.Advance(5 * time.Second)
	g := newQRStation(t, path, c, deny)
	o = g.st.TapQR(ctx, alice3)
	require.Equal(t, validator.Reason("replay"), o.Reason)
	o = g.st.TapQR(ctx, qrText(t, alice, c.t, 4))
	require.Equal(t, validator.ReasonAlreadyTapped, o.Reason, "pass-back survives too")
	// Two windows later the memory has let go, and the code is too old anyway.
	c.Advance(3 * time.Minute)
	h := newQRStation(t, filepath.Join(t.TempDir(), "j.db"), c, deny)
	o = h.st.TapQR(ctx, alice3)
	require.Equal(t, validator.Reason("clock_skew"), o.Reason)
}

// BenchmarkStationQR is a QR tap at the station: parsing, verification
// (the credential seen before: one device signature), pass-back, record
// and journal commit with fsync.
func BenchmarkStationQR(b *testing.B) {
	ctx := context.Background()
	c := newClock(txDate)
	f := newQRStation(b, filepath.Join(b.TempDir(), "journal.db"), c, tokenSet{})
	d := qrDevice(b, qrKey("issuer"), "bench")
	var counter uint32
	for b.Loop() {
		b.StopTimer()
		counter++
		text := qrText(b, d, c.t, counter)
		b.StartTimer()
		// Open the first time, already_tapped (pass-back) after: both
		// verified and committed.
		if o := f.st.TapQR(ctx, text); o.Record == nil || (o.Reason != validator.ReasonOK && o.Reason != validator.ReasonAlreadyTapped) {
			b.Fatal(o.Reason)
		}
	}
}
