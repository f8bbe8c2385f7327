package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/faregate/faregate/backend/denylistreg"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/qr"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func qrKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("qr issuer " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func qrStoreOf(t testing.TB, s Store) QRStore {
	qs, ok := s.(QRStore)
	require.True(t, ok, "%T is no QRStore", s)
	return qs
}

// newQRDevice makes a device key and a credential for token valid around
// st0, signed by issuer; issued records it in the store as issued.
func newQRDevice(t testing.TB, s Store, issuer ed25519.PrivateKey, token rider.Token, cat qr.Category, issued bool) *qr.Device {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	d := &qr.Device{Key: key, Credential: qr.Credential{Token: token, Device: qr.DeviceKey(pub),
		NotBefore: st0.Add(-24 * time.Hour), NotAfter: st0.Add(30 * 24 * time.Hour), Category: cat}}
	require.NoError(t, d.Credential.Sign(issuer))
	if issued {
		require.NoError(t, qrStoreOf(t, s).IssueQR(context.Background(), QRCredential{
			Issued: qr.Issued{Token: token, Device: d.Credential.Device, IssuedAt: d.Credential.NotBefore},
			KeyID:  d.Credential.KeyID, NotBefore: d.Credential.NotBefore, NotAfter: d.Credential.NotAfter, Category: cat,
		}))
	}
	return d
}

// qrTap journals a provisional QR tap the gate opened at time at for a
// code the device made at codeAt with counter.
func (g *testGate) qrTap(t testing.TB, d *qr.Device, at, codeAt time.Time, counter uint32, mode string, zones ...string) tap.Record {
	t.Helper()
	payload, err := d.Code(codeAt, counter, nil)
	require.NoError(t, err)
	g.seq++
	return tap.Record{
		ID: uuid.Must(uuid.NewV7()), Gate: g.id, Seq: g.seq, Time: at.UTC(), LocalTime: at.Format(time.RFC3339Nano),
		Location: tap.Location{Operator: "metro", Stop: "Stop " + g.id, Zones: zones, Mode: mode, Role: tap.RoleEntry},
		Kind:     tap.KindQR, Token: d.Credential.Token, Scheme: "qr", Category: d.Credential.Category.String(),
		ODA: tap.ODA{Method: "none"}, Decision: tap.Open, Reason: "ok", Provisional: true, QR: payload,
	}
}

func newQRBackoffice(t testing.TB, s Store, issuers ...ed25519.PrivateKey) *backoffice {
	var pubs []ed25519.PublicKey
	for _, k := range issuers {
		pubs = append(pubs, k.Public().(ed25519.PublicKey))
	}
	set, err := qr.NewIssuers(pubs...)
	require.NoError(t, err)
	v, err := NewQRVerifier(qrStoreOf(t, s), set, 0, nil)
	require.NoError(t, err)
	return newBackoffice(t, s, IngestOptions{QR: v})
}

// qrOutcomes returns the stored taps of token by id.
func qrOutcomes(t testing.TB, s Store, token rider.Token) map[uuid.UUID]StoredTap {
	sts, err := s.Taps(context.Background(), token, time.Time{}, st0.Add(365*24*time.Hour))
	require.NoError(t, err)
	out := map[uuid.UUID]StoredTap{}
	for _, st := range sts {
		out[st.ID] = st
	}
	return out
}

func TestQRStore(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		qs := qrStoreOf(t, s)
		tk := testToken(1)
		d := newQRDevice(t, s, qrKey("1"), tk, qr.Child, true)
		dev := d.Credential.Device

		c, ok, err := qs.QRCredential(ctx, dev)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, tk, c.Token)
		require.Equal(t, qr.Child, c.Category)
		require.Equal(t, qr.KeyIDOf(qrKey("1").Public().(ed25519.PublicKey)), c.KeyID)
		require.True(t, c.NotAfter.Equal(d.Credential.NotAfter))
		require.True(t, c.RevokedAt.IsZero())
		iss, ok, err := qs.Issued(ctx, dev)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, c.Issued, iss)
		require.ErrorIs(t, qs.IssueQR(ctx, c), ErrQRCredentialExists)
		_, ok, err = qs.Issued(ctx, qr.DeviceKey{1})
		require.NoError(t, err)
		require.False(t, ok)

		// Revocation: the earliest instant stays.
		c, err = qs.RevokeQR(ctx, dev, st0.Add(time.Hour))
		require.NoError(t, err)
		require.True(t, c.RevokedAt.Equal(st0.Add(time.Hour)))
		c, err = qs.RevokeQR(ctx, dev, st0.Add(2*time.Hour))
		require.NoError(t, err)
		require.True(t, c.RevokedAt.Equal(st0.Add(time.Hour)))
		c, err = qs.RevokeQR(ctx, dev, st0.Add(time.Minute))
		require.NoError(t, err)
		require.True(t, c.RevokedAt.Equal(st0.Add(time.Minute)))
		_, err = qs.RevokeQR(ctx, qr.DeviceKey{1}, st0)
		require.ErrorIs(t, err, ErrNoQRCredential)

		// Counters: the first tap keeps one; asking again for it is no replay.
		for _, tc := range []struct {
			counter   uint32
			tap, want string
		}{{7, "a/1", "a/1"}, {7, "a/1", "a/1"}, {7, "b/1", "a/1"}, {8, "b/2", "b/2"}} {
			first, err := qs.UseCounter(ctx, dev, tc.counter, tc.tap)
			require.NoError(t, err)
			require.Equal(t, tc.want, first)
		}
		first, err := qs.UseCounter(ctx, qr.DeviceKey{2}, 7, "c/1")
		require.NoError(t, err)
		require.Equal(t, "c/1", first, "counters are per device")

		// Outcomes: a provisional tap is no leg until confirmed; the first
		// verdict stays.
		pub, _, _ := ed25519.GenerateKey(nil)
		require.NoError(t, s.AddGate(ctx, "G-1", pub, st0))
		g := &testGate{id: "G-1"}
		ok1, refused := g.qrTap(t, d, st0, st0, 1, "bus"), g.qrTap(t, d, st0.Add(time.Minute), st0.Add(time.Minute), 1, "bus")
		_, err = s.StoreBatches(ctx, []*tap.Batch{{Gate: "G-1", Taps: []tap.Record{ok1, refused}}}, st0)
		require.NoError(t, err)
		sts := qrOutcomes(t, s, tk)
		for _, st := range sts {
			_, leg := st.Leg()
			require.False(t, leg, "unverified")
			require.Empty(t, st.QROutcome)
		}
		checked := st0.Add(5 * time.Minute)
		require.NoError(t, qs.RecordQROutcomes(ctx, []QROutcome{
			{TapID: ok1.ID, Outcome: QRConfirmed, Category: "child", Leg: true},
			{TapID: refused.ID, Outcome: QRRefused, Reason: qr.ReasonReplay, Detail: "counter 1 was used by tap x"},
		}, checked))
		require.NoError(t, qs.RecordQROutcomes(ctx, []QROutcome{{TapID: ok1.ID, Outcome: QRRefused, Reason: qr.ReasonRevoked}}, checked))
		require.Error(t, qs.RecordQROutcomes(ctx, []QROutcome{{TapID: ok1.ID, Outcome: "maybe"}}, checked))
		sts = qrOutcomes(t, s, tk)
		require.Equal(t, QRConfirmed, sts[ok1.ID].QROutcome)
		cat, leg := sts[ok1.ID].Leg()
		require.True(t, leg)
		require.Equal(t, "child", cat)
		require.True(t, sts[ok1.ID].Received.Equal(checked), "a confirmed tap counts as received when confirmed")
		require.Equal(t, QRRefused, sts[refused.ID].QROutcome)
		require.Equal(t, string(qr.ReasonReplay), sts[refused.ID].QRReason)
		_, leg = sts[refused.ID].Leg()
		require.False(t, leg)
	})
}

// TestQRIngestVerifies: every back-office path of an uploaded QR tap,
// through real signed uploads.
func TestQRIngestVerifies(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		issuer := qrKey("1")
		b := newQRBackoffice(t, s, issuer)
		gA := newTestGate(t, s, "G-A", nil)
		gB := newTestGate(t, s, "G-B", nil)
		alice, bob, carol, dave, erin := testToken(1), testToken(2), testToken(3), testToken(4), testToken(5)
		dAlice := newQRDevice(t, s, issuer, alice, qr.Adult, true)
		dBob := newQRDevice(t, s, issuer, bob, qr.Adult, true)
		dCarol := newQRDevice(t, s, issuer, carol, qr.Adult, false)  // never issued
		dDave := newQRDevice(t, s, qrKey("2"), dave, qr.Adult, true) // another issuer's key
		dErin := newQRDevice(t, s, issuer, erin, qr.Adult, true)
		revokedAt := st0.Add(30 * time.Minute)
		_, err := qrStoreOf(t, s).RevokeQR(ctx, dBob.Credential.Device, revokedAt)
		require.NoError(t, err)

		confirmed := gA.qrTap(t, dAlice, st0, st0.Add(-5*time.Second), 1, "bus")
		atB := confirmed
		atB.ID, atB.Gate, atB.Seq, atB.Time = uuid.Must(uuid.NewV7()), "G-B", 1, st0.Add(20*time.Second)
		atB.LocalTime = atB.Time.Format(time.RFC3339Nano)
		gB.seq = 1
		beforeRevoke := gA.qrTap(t, dBob, revokedAt.Add(-time.Minute), revokedAt.Add(-time.Minute), 1, "bus")
		afterRevoke := gA.qrTap(t, dBob, revokedAt.Add(time.Minute), revokedAt.Add(time.Minute), 2, "bus")
		notIssued := gA.qrTap(t, dCarol, st0, st0, 1, "bus")
		unknownKey := gA.qrTap(t, dDave, st0, st0, 1, "bus")
		windowEdge := gA.qrTap(t, dErin, st0, st0.Add(-qr.DefaultWindow), 1, "bus")
		outside := gA.qrTap(t, dErin, st0.Add(time.Hour), st0.Add(time.Hour-qr.DefaultWindow-time.Second), 2, "bus")

		b.clock.t = revokedAt.Add(2 * time.Hour) // uploaded after the revocation
		gA.upload(t, b.srv.URL, b.clock.t, []tap.Record{confirmed, beforeRevoke, afterRevoke, notIssued, unknownKey, windowEdge, outside})
		gB.upload(t, b.srv.URL, b.clock.t, []tap.Record{atB})
		// The first gate's batch uploaded again (a lost acknowledgement):
		// its tap is not a replay of itself.
		ack := gA.upload(t, b.srv.URL, b.clock.t, []tap.Record{confirmed})
		require.Equal(t, 1, ack.Duplicates)

		for _, tc := range []struct {
			name   string
			token  rider.Token
			r      tap.Record
			reason qr.Reason // "": confirmed
		}{
			{"confirmed", alice, confirmed, ""},
			{"replay at another gate", alice, atB, qr.ReasonReplay},
			{"revoked after the tap", bob, beforeRevoke, ""},
			{"revoked before the tap", bob, afterRevoke, qr.ReasonRevoked},
			{"never issued", carol, notIssued, qr.ReasonNotIssued},
			{"unknown key id", dave, unknownKey, qr.ReasonUnknownKeyID},
			{"window edge", erin, windowEdge, ""},
			{"outside the window", erin, outside, qr.ReasonClockSkew},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, ok := qrOutcomes(t, s, tc.token)[tc.r.ID]
				require.True(t, ok, "the tap is stored whatever the outcome")
				_, leg := st.Leg()
				if tc.reason == "" {
					require.Equal(t, QRConfirmed, st.QROutcome)
					require.Equal(t, "adult", st.QRCategory)
					require.True(t, leg)
				} else {
					require.Equal(t, QRRefused, st.QROutcome)
					require.Equal(t, string(tc.reason), st.QRReason)
					require.False(t, leg, "a refused tap is never settled")
				}
			})
		}

		// The read API shows the refused tap and its reason; settlement
		// charges alice one fare (the replay is not charged) and carol
		// nothing.
		var rc ReceiptJSON
		getJSON(t, b.srv.URL+"/v1/riders/"+alice.String()+"/receipts?from=2026-11-23&to=2026-11-23", &rc)
		require.Len(t, rc.QRTaps, 2)
		byID := map[string]QRTapJSON{}
		for _, q := range rc.QRTaps {
			byID[q.ID] = q
		}
		require.Equal(t, "confirmed", byID[confirmed.ID.String()].Outcome)
		require.Equal(t, QRTapJSON{ID: atB.ID.String(), Time: atB.Time.Format(time.RFC3339Nano), Gate: "G-B", Decision: "open", Outcome: "refused", Reason: "replay"},
			byID[atB.ID.String()])
		require.Len(t, rc.Legs, 1)
		require.Equal(t, "1.75", rc.Charged)
		// The overview counts the riders with a confirmed QR tap.
		var ov OverviewJSON
		getJSON(t, b.srv.URL+"/v1/overview?from=2026-11-23&to=2026-11-23", &ov)
		require.Equal(t, 3, ov.Riders, "alice, bob and erin")
		require.Equal(t, "5.25", ov.Charged)

		_, end := DayBounds(b.rules, capping.Date(b.rules.ServiceDay(st0)))
		b.clock.t = end.Add(time.Hour)
		_, err = b.settler.Settle(ctx, b.rules.ServiceDay(st0), Shard{0, 1})
		require.NoError(t, err)
		cs, err := s.Charges(ctx, b.rules.ServiceDay(st0))
		require.NoError(t, err)
		got := map[rider.Token]capping.Amount{}
		for _, c := range cs {
			got[c.Token] = c.Amount
		}
		require.Equal(t, map[rider.Token]capping.Amount{alice: 175, bob: 175, erin: 175}, got)
	})
}

// TestQRStoreUnverified: without a verifier QR taps are kept, pending,
// never settled.
func TestQRStoreUnverified(t *testing.T) {
	s, err := OpenSQLite(context.Background(), t.TempDir())
	require.NoError(t, err)
	defer s.Close()
	b := newBackoffice(t, s, IngestOptions{})
	g := newTestGate(t, s, "G-A", nil)
	d := newQRDevice(t, s, qrKey("1"), testToken(1), qr.Adult, true)
	r := g.qrTap(t, d, st0, st0, 1, "bus")
	g.upload(t, b.srv.URL, st0, []tap.Record{r})
	var rc ReceiptJSON
	getJSON(t, b.srv.URL+"/v1/riders/"+testToken(1).String()+"/receipts?from=2026-11-23&to=2026-11-23", &rc)
	require.Empty(t, rc.Legs)
	require.Len(t, rc.QRTaps, 1)
	require.Equal(t, "pending", rc.QRTaps[0].Outcome)
}

// qrRulesJSON prices children at about half fare, with a daily bus cap of
// their own (card taps carry no category: the second rule prices them).
const qrRulesJSON = `{
  "currency": "GBP",
  "time_zone": "Europe/London",
  "service_day_start": "04:30",
  "fares": [
    {"id": "bus-child", "modes": ["bus"], "categories": ["child"], "price": "0.85"},
    {"id": "bus", "modes": ["bus"], "price": "1.75"}
  ],
  "caps": [
    {"id": "bus-day-child", "amount": "2.55", "period": {"kind": "service_day"}, "modes": ["bus"], "categories": ["child"]},
    {"id": "bus-day", "amount": "5.25", "period": {"kind": "service_day"}, "modes": ["bus"]}
  ]
}`

// TestQRSettlement: a rider's confirmed QR taps are capped and charged
// like a card rider's, in the credential's category; a refused one is
// not; settlement's charges equal the capping engine's on the same legs.
func TestQRSettlement(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		issuer := qrKey("1")
		b := newQRBackoffice(t, s, issuer)
		rules, err := capping.ParseRules([]byte(qrRulesJSON))
		require.NoError(t, err)
		b.rules, b.settler.Rules = rules, rules
		g1 := newTestGate(t, s, "G-1", b.vault.key.PublicKey())
		g2 := newTestGate(t, s, "G-2", b.vault.key.PublicKey())
		cardRider := testCard(1)
		adult := newQRDevice(t, s, issuer, testToken(10), qr.Adult, true)
		child := newQRDevice(t, s, issuer, testToken(11), qr.Child, true)

		var recs1, recs2 []tap.Record
		for i := range 5 { // five rides each: the cap binds after three
			at := st0.Add(time.Duration(i) * 2 * time.Hour)
			recs1 = append(recs1, g1.tap(t, cardRider, at, "bus"), g1.qrTap(t, adult, at, at, uint32(i+1), "bus"))
			recs2 = append(recs2, g2.qrTap(t, child, at.Add(time.Minute), at.Add(time.Minute), uint32(i+1), "bus"))
		}
		// The child's third code copied to another gate: refused, not charged.
		replay := recs2[2]
		replay.ID, replay.Gate, replay.Seq = uuid.Must(uuid.NewV7()), "G-1", 99
		recs1 = append(recs1, replay)
		b.clock.t = st0.Add(12 * time.Hour)
		g2.upload(t, b.srv.URL, b.clock.t, recs2) // first: the copy at G-1 is the replay
		g1.upload(t, b.srv.URL, b.clock.t, recs1)
		require.Equal(t, QRRefused, qrOutcomes(t, s, child.Credential.Token)[replay.ID].QROutcome)

		day := rules.ServiceDay(st0)
		_, end := DayBounds(rules, day)
		b.clock.t = end.Add(time.Hour)
		sum, err := b.settler.Settle(ctx, day, Shard{0, 1})
		require.NoError(t, err)
		require.Equal(t, 3, sum.Riders)
		require.Equal(t, 15, sum.Taps)

		// What the engine says of the same legs, categories as issued.
		legs := map[string][]capping.Tap{}
		for _, r := range append(recs1[:len(recs1)-1:len(recs1)-1], recs2...) {
			tk := r.Token.String()
			legs[tk] = append(legs[tk], capping.Tap{Token: tk, Time: r.Time, Mode: r.Location.Mode, Category: r.Category})
		}
		want := map[string]capping.Amount{}
		for tk, l := range legs {
			var rd capping.Rider
			require.NoError(t, capping.NewEngine(rules).Rate(&rd, l))
			want[tk] = rd.Total
		}
		cs, err := s.Charges(ctx, day)
		require.NoError(t, err)
		got := map[string]capping.Amount{}
		for _, c := range cs {
			got[c.Token.String()] = c.Amount
			require.Equal(t, ChargePending, c.Status)
		}
		require.Equal(t, map[string]capping.Amount{
			cardRider.token.String(): 525, adult.Credential.Token.String(): 525, child.Credential.Token.String(): 255,
		}, got)
		require.Equal(t, want, got)
	})
}

// TestQRAPI: issuing for an enrolled rider, revocation through the deny
// list, and what a revoked key's later taps become.
func TestQRAPI(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		issuer := qrKey("1")
		b := newQRBackoffice(t, s, issuer)
		dlStore, err := denylistreg.OpenSQLite(ctx, filepath.Join(t.TempDir(), "denylist.db"))
		require.NoError(t, err)
		defer dlStore.Close()
		_, dlKey, _ := ed25519.GenerateKey(nil)
		reg, err := denylistreg.New(ctx, dlStore, denylistreg.Options{Key: dlKey})
		require.NoError(t, err)
		api := &QRAPI{Store: s, QR: qrStoreOf(t, s), Key: issuer, Denylist: reg, Token: testOperatorToken, Now: b.clock.Now}
		mux := http.NewServeMux()
		api.Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		// Enrol a card rider: one card tap puts its card data in the vault.
		g := newTestGate(t, s, "G-1", b.vault.key.PublicKey())
		c := testCard(1)
		g.upload(t, b.srv.URL, b.clock.t, []tap.Record{g.tap(t, c, st0, "bus")})

		devPub, devKey, _ := ed25519.GenerateKey(nil)
		body := func(token rider.Token, dev []byte, valid, cat string) string {
			j, _ := json.Marshal(map[string]string{"token": token.String(), "device": hex.EncodeToString(dev), "valid": valid, "category": cat})
			return string(j)
		}
		post := func(path, token, body string) (int, []byte) {
			req, err := http.NewRequest("POST", srv.URL+path, bytes.NewReader([]byte(body)))
			require.NoError(t, err)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			out, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			return resp.StatusCode, out
		}
		ok := body(c.token, devPub, "168h", "child")
		code, _ := post("/v1/qr/credentials", "", ok)
		require.Equal(t, http.StatusUnauthorized, code)
		code, _ = post("/v1/qr/credentials", "wrong", ok)
		require.Equal(t, http.StatusUnauthorized, code)
		code, out := post("/v1/qr/credentials", testOperatorToken, body(testCard(2).token, devPub, "168h", "adult"))
		require.Equal(t, http.StatusUnprocessableEntity, code, "no payment method in the vault: %s", out)
		for _, bad := range []string{"{", body(c.token, devPub[:31], "168h", ""), body(c.token, devPub, "0s", ""), body(c.token, devPub, "9000h", ""), body(c.token, devPub, "1h", "pensioner"), `{"token":"` + c.token.String() + `","x":1}`} {
			code, out = post("/v1/qr/credentials", testOperatorToken, bad)
			require.Equal(t, http.StatusBadRequest, code, "%s → %s", bad, out)
		}
		code, out = post("/v1/qr/credentials", testOperatorToken, ok)
		require.Equal(t, http.StatusCreated, code, string(out))
		var got QRCredentialJSON
		require.NoError(t, json.Unmarshal(out, &got))
		cred, err := qr.ParseCredential(got.Credential)
		require.NoError(t, err)
		require.NoError(t, cred.VerifySignature(issuer.Public().(ed25519.PublicKey)))
		require.Equal(t, c.token, cred.Token)
		require.Equal(t, qr.DeviceKey(devPub), cred.Device)
		require.Equal(t, qr.Child, cred.Category)
		require.True(t, cred.NotBefore.Equal(st0))
		require.True(t, cred.NotAfter.Equal(st0.Add(168*time.Hour-time.Second)))
		require.Equal(t, "child", got.Category)
		code, _ = post("/v1/qr/credentials", testOperatorToken, ok)
		require.Equal(t, http.StatusConflict, code, "one device key, one credential")

		// The issued credential works end to end: a tap is confirmed.
		d := &qr.Device{Credential: *cred, Key: devKey}
		first := g.qrTap(t, d, st0.Add(time.Minute), st0.Add(time.Minute), 1, "bus")
		g.upload(t, b.srv.URL, b.clock.t.Add(time.Minute), []tap.Record{first})
		require.Equal(t, QRConfirmed, qrOutcomes(t, s, c.token)[first.ID].QROutcome)

		// Revocation.
		code, _ = post("/v1/qr/credentials/"+hex.EncodeToString(devPub)+"/revoke", "", "")
		require.Equal(t, http.StatusUnauthorized, code)
		code, _ = post("/v1/qr/credentials/zz/revoke", testOperatorToken, "")
		require.Equal(t, http.StatusBadRequest, code)
		other, _, _ := ed25519.GenerateKey(nil)
		code, _ = post("/v1/qr/credentials/"+hex.EncodeToString(other)+"/revoke", testOperatorToken, "")
		require.Equal(t, http.StatusNotFound, code)
		require.False(t, reg.Current().Contains(c.token))
		b.clock.t = st0.Add(time.Hour)
		code, out = post("/v1/qr/credentials/"+hex.EncodeToString(devPub)+"/revoke", testOperatorToken, "")
		require.Equal(t, http.StatusOK, code, string(out))
		var rev QRCredentialJSON
		require.NoError(t, json.Unmarshal(out, &rev))
		require.Equal(t, st0.Add(time.Hour).Format(time.RFC3339Nano), rev.RevokedAt)
		require.Equal(t, reg.Current().Version(), rev.DenylistVersion)
		require.True(t, reg.Current().Contains(c.token), "the token is on the deny list the gates replicate")
		e, listed, err := reg.Entry(ctx, c.token)
		require.NoError(t, err)
		require.True(t, listed)
		require.Equal(t, ReasonQRRevoked, e.Reason)
		// Revoking again keeps the first instant.
		b.clock.t = st0.Add(2 * time.Hour)
		code, out = post("/v1/qr/credentials/"+hex.EncodeToString(devPub)+"/revoke", testOperatorToken, "")
		require.Equal(t, http.StatusOK, code)
		require.NoError(t, json.Unmarshal(out, &rev))
		require.Equal(t, st0.Add(time.Hour).Format(time.RFC3339Nano), rev.RevokedAt)

		// A tap made with the key after the revocation (a gate whose deny
		// list was behind opened for it) is refused, not charged.
		late := g.qrTap(t, d, st0.Add(90*time.Minute), st0.Add(90*time.Minute), 2, "bus")
		g.upload(t, b.srv.URL, b.clock.t, []tap.Record{late})
		st := qrOutcomes(t, s, c.token)
		require.Equal(t, QRRefused, st[late.ID].QROutcome)
		require.Equal(t, string(qr.ReasonRevoked), st[late.ID].QRReason)
		require.Equal(t, QRConfirmed, st[first.ID].QROutcome)
	})
}

var benchGates int

// BenchmarkIngestQR: upload batches of 100 provisional QR taps from one
// gate over HTTP, each verified (two signatures, the credential, the
// counter) and recorded; reports QR taps/s.
func BenchmarkIngestQR(b *testing.B) {
	for name, s := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			issuer := qrKey("1")
			bo := newQRBackoffice(b, s, issuer)
			benchGates++
			g := newTestGate(b, s, fmt.Sprintf("G-bench-%s-%d", name, benchGates), nil)
			devs := make([]*qr.Device, 100)
			for i := range devs {
				devs[i] = newQRDevice(b, s, issuer, testToken(1000+i), qr.Adult, true)
			}
			const perBatch = 100
			var counter uint32
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				counter++
				recs := make([]tap.Record, perBatch)
				for i := range recs {
					recs[i] = g.qrTap(b, devs[i], st0, st0, counter, "bus")
				}
				b.StartTimer()
				g.upload(b, bo.srv.URL, bo.clock.t, recs)
			}
			b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "qrtaps/s")
		})
	}
}

// TestQRReplayInOneBatch: the same code twice in one upload, and the
// counters claimed through any QRStore (not only the SQL fast path).
func TestQRReplayInOneBatch(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		for _, plain := range []bool{false, true} {
			issuer := qrKey("1")
			var qs QRStore = qrStoreOf(t, s)
			if plain {
				qs = struct{ QRStore }{qs} // hides the SQL store: UseCounter one by one
			}
			set, err := qr.NewIssuers(issuer.Public().(ed25519.PublicKey))
			require.NoError(t, err)
			v, err := NewQRVerifier(qs, set, 0, nil)
			require.NoError(t, err)
			g := &testGate{id: "G-1"}
			d := newQRDevice(t, s, issuer, testToken(1), qr.Adult, true)
			a := g.qrTap(t, d, st0, st0, 1, "bus")
			copyOfA := a
			copyOfA.ID = uuid.Must(uuid.NewV7())
			next := g.qrTap(t, d, st0.Add(time.Second), st0.Add(time.Second), 2, "bus")
			refusedAtGate := g.qrTap(t, d, st0, st0, 2, "bus")
			refusedAtGate.Decision = tap.Reject
			out, err := v.Verify(context.Background(), &tap.Batch{Gate: "G-1", Taps: []tap.Record{a, refusedAtGate, copyOfA, next}})
			require.NoError(t, err)
			require.Len(t, out, 3, "a tap the gate refused is not verified")
			require.Equal(t, QRConfirmed, out[0].Outcome)
			require.Equal(t, QRRefused, out[1].Outcome)
			require.Equal(t, qr.ReasonReplay, out[1].Reason)
			require.Contains(t, out[1].Detail, a.ID.String())
			require.Equal(t, copyOfA.ID, out[1].TapID)
			require.Equal(t, QRConfirmed, out[2].Outcome)
			// Verified again (a retried upload): the same verdicts.
			again, err := v.Verify(context.Background(), &tap.Batch{Gate: "G-1", Taps: []tap.Record{a, copyOfA, next}})
			require.NoError(t, err)
			require.Equal(t, out, again)
		}
	})
}

type failingQRStore struct{ QRStore }

func (failingQRStore) Issued(context.Context, qr.DeviceKey) (qr.Issued, bool, error) {
	return qr.Issued{}, false, errors.New("connection refused")
}

// TestQRStoreErrorIsRetried: a store error while verifying is no refusal:
// the upload is answered 503, nothing is stored, and the gate's retry is
// verified for real.
func TestQRStoreErrorIsRetried(t *testing.T) {
	s, err := OpenSQLite(context.Background(), t.TempDir())
	require.NoError(t, err)
	defer s.Close()
	issuer := qrKey("1")
	set, err := qr.NewIssuers(issuer.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	v, err := NewQRVerifier(failingQRStore{s}, set, 0, nil)
	require.NoError(t, err)
	b := newBackoffice(t, s, IngestOptions{QR: v})
	g := newTestGate(t, s, "G-1", nil)
	d := newQRDevice(t, s, issuer, testToken(1), qr.Adult, true)
	r := g.qrTap(t, d, st0, st0, 1, "bus")
	resp, body := g.post(t, http.DefaultClient, b.srv.URL, st0, []tap.Record{r})
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	require.Zero(t, countTaps(t, s))

	b2 := newQRBackoffice(t, s, issuer)
	g.upload(t, b2.srv.URL, st0, []tap.Record{r})
	require.Equal(t, QRConfirmed, qrOutcomes(t, s, testToken(1))[r.ID].QROutcome)
}
