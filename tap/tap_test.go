package tap_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

var now = time.Date(2026, 11, 23, 8, 15, 0, 0, time.UTC)

func record(t testing.TB, seq uint64) tap.Record {
	t.Helper()
	id, err := uuid.NewV7()
	require.NoError(t, err)
	return tap.Record{
		ID: id, Gate: "G-001", Seq: seq,
		Time: now.Add(time.Duration(seq) * time.Second), LocalTime: now.Add(time.Duration(seq) * time.Second).In(time.FixedZone("", -5*3600)).Format(time.RFC3339Nano),
		Location:  tap.Location{Operator: "metro", Line: "1", Stop: "Central", Zones: []string{"1"}, Mode: "rail", Role: tap.RoleEntry, Group: "central-north"},
		Kind:      tap.KindEMV,
		Token:     rider.NewToken([]byte("k"), "4761739001010010", "01"),
		MaskedPAN: "476173******0010", Scheme: "visa",
		ODA:      tap.ODA{Method: "fDDA", OK: true},
		Decision: tap.Open, Reason: "ok", KernelMicros: 900, DecideMicros: 1000,
		DenylistVersion: 7, Sealed: []byte{1, 2, 3},
	}
}

func TestSealOnlyTheVaultOpensForThatTap(t *testing.T) {
	vault, err := tap.GenerateVaultKey(nil)
	require.NoError(t, err)
	id := uuid.Must(uuid.NewV7())
	card := tap.CardData{PAN: "4761739001010010", PSN: "01", Expiry: "281231", Track2: []byte{0x47, 0x61}, EMV: []byte{0x9f, 0x36, 0x02, 0x00, 0x01}}
	sealed, err := tap.SealCardData(vault.PublicKey(), "G-001", id, card)
	require.NoError(t, err)
	require.NotContains(t, string(sealed), "4761739001010010")
	require.LessOrEqual(t, len(sealed), tap.MaxSealed)

	got, err := tap.OpenCardData(vault, "G-001", id, sealed)
	require.NoError(t, err)
	require.Equal(t, card, got)

	other, err := tap.GenerateVaultKey(nil)
	require.NoError(t, err)
	for name, open := range map[string]func() (tap.CardData, error){
		"other vault key": func() (tap.CardData, error) { return tap.OpenCardData(other, "G-001", id, sealed) },
		"other tap id":    func() (tap.CardData, error) { return tap.OpenCardData(vault, "G-001", uuid.Must(uuid.NewV7()), sealed) },
		"other gate":      func() (tap.CardData, error) { return tap.OpenCardData(vault, "G-002", id, sealed) },
		"flipped bit": func() (tap.CardData, error) {
			bad := bytes.Clone(sealed)
			bad[len(bad)-1] ^= 1
			return tap.OpenCardData(vault, "G-001", id, bad)
		},
		"truncated": func() (tap.CardData, error) { return tap.OpenCardData(vault, "G-001", id, sealed[:20]) },
		"oversized": func() (tap.CardData, error) {
			return tap.OpenCardData(vault, "G-001", id, make([]byte, tap.MaxSealed+1))
		},
	} {
		_, err := open()
		require.ErrorIs(t, err, tap.ErrOpen, name)
		require.Equal(t, tap.ErrOpen.Error(), err.Error(), "%s: deliberately vague", name)
	}
	require.NotContains(t, card.String(), "4761")
}

func TestVaultKeyPEMRoundTrip(t *testing.T) {
	k, err := tap.GenerateVaultKey(nil)
	require.NoError(t, err)
	priv, err := tap.MarshalVaultKey(k)
	require.NoError(t, err)
	pub, err := tap.MarshalVaultPublicKey(k.PublicKey())
	require.NoError(t, err)
	k2, err := tap.ParseVaultKey(priv)
	require.NoError(t, err)
	require.True(t, k.Equal(k2))
	p2, err := tap.ParseVaultPublicKey(pub)
	require.NoError(t, err)
	require.True(t, k.PublicKey().Equal(p2))
	_, err = tap.ParseVaultKey(pub)
	require.ErrorIs(t, err, tap.ErrKey)
	_, err = tap.ParseVaultPublicKey(priv)
	require.ErrorIs(t, err, tap.ErrKey)
	edPub, _, _ := ed25519.GenerateKey(nil)
	_ = edPub
}

func TestDecodeBatch(t *testing.T) {
	good := tap.Batch{Gate: "G-001", Taps: []tap.Record{record(t, 1), record(t, 2)}, Backlog: 2, DenylistVersion: 7}
	body, err := json.Marshal(good)
	require.NoError(t, err)
	b, err := tap.DecodeBatch(body, "G-001")
	require.NoError(t, err)
	require.Len(t, b.Taps, 2)
	require.Equal(t, good.Taps[1].ID, b.Taps[1].ID)
	require.Equal(t, good.Taps[0].Token, b.Taps[0].Token)

	_, err = tap.DecodeBatch(body, "G-002")
	require.ErrorIs(t, err, tap.ErrBatch, "a gate uploads only as itself")

	mutate := func(f func(*tap.Record)) []byte {
		bb := tap.Batch{Gate: "G-001", Taps: []tap.Record{record(t, 1), record(t, 2), record(t, 3)}}
		f(&bb.Taps[1])
		out, err := json.Marshal(bb)
		require.NoError(t, err)
		return out
	}
	for name, f := range map[string]func(*tap.Record){
		"not v7":             func(r *tap.Record) { r.ID = uuid.New() },
		"seq 0":              func(r *tap.Record) { r.Seq = 0 },
		"no time":            func(r *tap.Record) { r.Time = time.Time{}; r.LocalTime = "" },
		"local differs":      func(r *tap.Record) { r.LocalTime = now.Add(time.Hour).Format(time.RFC3339) },
		"other gate":         func(r *tap.Record) { r.Gate = "G-002" },
		"clear pan":          func(r *tap.Record) { r.MaskedPAN = "4761739001010010" },
		"control char":       func(r *tap.Record) { r.Location.Stop = "Cen\x1b[2Jtral" },
		"long field":         func(r *tap.Record) { r.Scheme = strings.Repeat("v", tap.MaxField+1) },
		"bad decision":       func(r *tap.Record) { r.Decision = "maybe" },
		"bad role":           func(r *tap.Record) { r.Location.Role = "sideways" },
		"bad kind":           func(r *tap.Record) { r.Kind = "nfc" },
		"open without token": func(r *tap.Record) { r.Token = rider.Token{} },
		"huge sealed":        func(r *tap.Record) { r.Sealed = make([]byte, tap.MaxSealed+1) },
		"qr on emv":          func(r *tap.Record) { r.QR = []byte("x") },
		"no reason":          func(r *tap.Record) { r.Reason = "" },
	} {
		_, err := tap.DecodeBatch(mutate(f), "G-001")
		var be *tap.BatchError
		require.ErrorAs(t, err, &be, name)
		require.Len(t, be.Items, 1, name)
		require.Equal(t, 1, be.Items[0].Index, name)
		require.NotContains(t, err.Error(), "4761739001010010", name)
	}

	dup := tap.Batch{Gate: "G-001", Taps: []tap.Record{record(t, 1)}}
	dup.Taps = append(dup.Taps, dup.Taps[0])
	out, _ := json.Marshal(dup)
	_, err = tap.DecodeBatch(out, "G-001")
	require.ErrorIs(t, err, tap.ErrRecord)

	for name, body := range map[string][]byte{
		"empty":      nil,
		"not json":   []byte("{"),
		"no taps":    []byte(`{"gate":"G-001","taps":[]}`),
		"trailing":   append(bytes.Clone(body), []byte(` {}`)...),
		"wrong type": []byte(`{"gate":"G-001","taps":{}}`),
		"too big":    make([]byte, tap.MaxBatchBytes+1),
	} {
		_, err := tap.DecodeBatch(body, "G-001")
		require.ErrorIs(t, err, tap.ErrBatch, name)
		require.Equal(t, name == "too big", errors.Is(err, tap.ErrTooLarge), name)
	}
	many := tap.Batch{Gate: "G-001"}
	for i := range tap.MaxBatchTaps + 1 {
		many.Taps = append(many.Taps, record(t, uint64(i+1)))
	}
	out, _ = json.Marshal(many)
	_, err = tap.DecodeBatch(out, "G-001")
	require.ErrorIs(t, err, tap.ErrTooLarge)
	require.ErrorIs(t, err, tap.ErrBatch)
}

func TestSignedRequest(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	otherPub, otherKey, _ := ed25519.GenerateKey(nil)
	keys := map[string]ed25519.PublicKey{"G-001": pub, "G-002": otherPub}
	keyOf := func(g string) ed25519.PublicKey { return keys[g] }
	body := []byte(`{"gate":"G-001"}`)

	req := httptest.NewRequest("POST", "/v1/taps", bytes.NewReader(body))
	tap.SignRequest(req, "G-001", key, now, body)
	gate, err := tap.VerifyRequest(req, body, keyOf, now.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, "G-001", gate)

	for name, tc := range map[string]struct {
		sign func(*httptestReq)
		at   time.Time
		body []byte
	}{
		"tampered body":        {at: now, body: []byte(`{"gate":"G-002"}`)},
		"stale":                {at: now.Add(tap.MaxSkew + time.Second), body: body},
		"from the future":      {at: now.Add(-tap.MaxSkew - time.Second), body: body},
		"signed by other gate": {sign: func(r *httptestReq) { tap.SignRequest(r.Request, "G-001", otherKey, now, body) }, at: now, body: body},
		"unknown gate":         {sign: func(r *httptestReq) { tap.SignRequest(r.Request, "G-999", key, now, body) }, at: now, body: body},
		"no headers":           {sign: func(r *httptestReq) {}, at: now, body: body},
		"other path": {sign: func(r *httptestReq) {
			r.URL.Path = "/v1/taps"
			tap.SignRequest(r.Request, "G-001", key, now, body)
			r.URL.Path = "/v1/other"
		}, at: now, body: body},
	} {
		r := &httptestReq{httptest.NewRequest("POST", "/v1/taps", bytes.NewReader(tc.body))}
		if tc.sign != nil {
			tc.sign(r)
		} else {
			tap.SignRequest(r.Request, "G-001", key, now, body)
		}
		_, err := tap.VerifyRequest(r.Request, tc.body, keyOf, tc.at)
		require.ErrorIs(t, err, tap.ErrUnauthorized, name)
	}
}

type httptestReq struct{ *http.Request }
