package qr_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/faregate/faregate/qr"
	"github.com/stretchr/testify/require"
)

func newBackOffice(t *testing.T, devs ...*qr.Device) (*qr.BackOffice, *qr.MemStore) {
	t.Helper()
	st := qr.NewMemStore()
	for _, d := range devs {
		st.Issue(qr.Issued{Token: d.Credential.Token, Device: d.Credential.Device, IssuedAt: d.Credential.NotBefore})
	}
	b, err := qr.NewBackOffice(qr.BackOfficeOptions{Issuers: issuers(t, testKey("issuer 1")), Store: st})
	require.NoError(t, err)
	return b, st
}

func TestBackOfficeCatchesReplayAcrossGates(t *testing.T) {
	ctx := context.Background()
	d := newDevice(t, testKey("issuer 1"), "alice")
	bo, _ := newBackOffice(t, d)
	payload := code(t, d, t0, 7, nil)

	// Two gates, each seeing the code for the first time, both open.
	gateA, _ := newGate(t, qr.GateOptions{})
	gateB, _ := newGate(t, qr.GateOptions{})
	_, err := gateA.Verify(payload)
	require.NoError(t, err)
	_, err = gateB.Verify(payload)
	require.NoError(t, err, "a gate cannot know what another gate saw")

	c, err := bo.Verify(ctx, qr.Upload{TapID: "gate-a/1", Payload: payload, At: t0.Add(2 * time.Second)})
	require.NoError(t, err)
	require.Equal(t, testToken("alice"), c.Credential.Token)
	// The same tap uploaded again (a retried upload) is still fine.
	_, err = bo.Verify(ctx, qr.Upload{TapID: "gate-a/1", Payload: payload, At: t0.Add(2 * time.Second)})
	require.NoError(t, err)
	// The copy at gate B is the replay.
	_, err = bo.Verify(ctx, qr.Upload{TapID: "gate-b/1", Payload: payload, At: t0.Add(40 * time.Second)})
	requireReason(t, qr.ReasonReplay, err)
	require.ErrorContains(t, err, "gate-a/1")
	// The next counter is a new tap.
	_, err = bo.Verify(ctx, qr.Upload{TapID: "gate-b/2", Payload: code(t, d, t0.Add(60*time.Second), 8, nil), At: t0.Add(61 * time.Second)})
	require.NoError(t, err)
}

func TestBackOfficeRevocationAtTapTime(t *testing.T) {
	ctx := context.Background()
	d := newDevice(t, testKey("issuer 1"), "alice")
	bo, st := newBackOffice(t, d)
	require.True(t, st.Revoke(d.Credential.Device, t0.Add(time.Minute)))

	// A tap before the revocation, uploaded after it, is good.
	_, err := bo.Verify(ctx, qr.Upload{TapID: "g/1", Payload: code(t, d, t0, 1, nil), At: t0})
	require.NoError(t, err)
	// At and after the revocation it is not.
	for i, at := range []time.Time{t0.Add(time.Minute), t0.Add(time.Hour)} {
		_, err = bo.Verify(ctx, qr.Upload{TapID: "g/" + string(rune('2'+i)), Payload: code(t, d, at, uint32(2+i), nil), At: at})
		requireReason(t, qr.ReasonRevoked, err)
	}
	require.False(t, st.Revoke(qr.DeviceKey{}, t0))
}

func TestBackOfficeRefusals(t *testing.T) {
	ctx := context.Background()
	issuer := testKey("issuer 1")
	alice := newDevice(t, issuer, "alice")
	neverIssued := newDevice(t, issuer, "nobody")
	// A device key the back office issued to bob, used in a credential for
	// alice's token (a leaked issuer key would allow this).
	swapped := newDevice(t, issuer, "bob")
	swapped.Credential.Token = testToken("alice")
	require.NoError(t, swapped.Credential.Sign(issuer))
	foreign := newDevice(t, testKey("issuer 3"), "carol")
	badDev := code(t, alice, t0, 1, nil)
	badDev[len(badDev)-3] ^= 4
	badIss := code(t, alice, t0, 1, nil)
	badIss[64] ^= 4
	expired := newDevice(t, issuer, "dave")
	expired.Credential.NotAfter = t0.Add(-time.Second)
	require.NoError(t, expired.Credential.Sign(issuer))

	bo, st := newBackOffice(t, alice, expired, foreign)
	st.Issue(qr.Issued{Token: testToken("bob"), Device: swapped.Credential.Device})

	window := qr.DefaultWindow
	for name, tc := range map[string]struct {
		u    qr.Upload
		want qr.Reason
	}{
		"never issued":             {qr.Upload{Payload: code(t, neverIssued, t0, 1, nil), At: t0}, qr.ReasonNotIssued},
		"issued to another token":  {qr.Upload{Payload: code(t, swapped, t0, 1, nil), At: t0}, qr.ReasonNotIssued},
		"unknown key id":           {qr.Upload{Payload: code(t, foreign, t0, 1, nil), At: t0}, qr.ReasonUnknownKeyID},
		"bad device signature":     {qr.Upload{Payload: badDev, At: t0}, qr.ReasonBadDeviceSignature},
		"bad issuer signature":     {qr.Upload{Payload: badIss, At: t0}, qr.ReasonBadIssuerSignature},
		"expired":                  {qr.Upload{Payload: code(t, expired, t0, 1, nil), At: t0}, qr.ReasonExpired},
		"window, code behind":      {qr.Upload{Payload: code(t, alice, t0.Add(-window-time.Second), 1, nil), At: t0}, qr.ReasonClockSkew},
		"window, code ahead":       {qr.Upload{Payload: code(t, alice, t0.Add(window+time.Second), 1, nil), At: t0}, qr.ReasonClockSkew},
		"challenge the gate asked": {qr.Upload{Payload: code(t, alice, t0, 1, nil), At: t0, Challenge: []byte{1}}, qr.ReasonChallenge},
		"malformed":                {qr.Upload{Payload: []byte{1, 2, 3}, At: t0}, qr.ReasonMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			tc.u.TapID = name
			_, err := bo.Verify(ctx, tc.u)
			requireReason(t, tc.want, err)
		})
	}
	// The window's edges are inside.
	for i, skew := range []time.Duration{-window, window} {
		_, err := bo.Verify(ctx, qr.Upload{TapID: "edge" + string(rune('0'+i)), Payload: code(t, alice, t0.Add(skew), uint32(100+i), nil), At: t0})
		require.NoError(t, err)
	}
	// A refused code does not burn its counter.
	_, err := bo.Verify(ctx, qr.Upload{TapID: "late", Payload: code(t, alice, t0, 1, nil), At: t0})
	require.NoError(t, err)
	_, err = bo.Verify(ctx, qr.Upload{Payload: code(t, alice, t0, 2, nil), At: t0})
	require.ErrorContains(t, err, "tap id")
}

type failingStore struct{ *qr.MemStore }

func (failingStore) Issued(context.Context, qr.DeviceKey) (qr.Issued, bool, error) {
	return qr.Issued{}, false, errors.New("connection refused")
}

func TestBackOfficeStoreErrorIsNotARefusal(t *testing.T) {
	bo, err := qr.NewBackOffice(qr.BackOfficeOptions{Issuers: issuers(t, testKey("issuer 1")), Store: failingStore{qr.NewMemStore()}})
	require.NoError(t, err)
	d := newDevice(t, testKey("issuer 1"), "alice")
	_, err = bo.Verify(context.Background(), qr.Upload{TapID: "x", Payload: code(t, d, t0, 1, nil), At: t0})
	require.ErrorContains(t, err, "connection refused")
	require.Equal(t, qr.Reason(""), qr.ReasonOf(err), "retry the upload; do not record a refusal")
	_, err = qr.NewBackOffice(qr.BackOfficeOptions{Issuers: issuers(t, testKey("issuer 1"))})
	require.Error(t, err)
}
