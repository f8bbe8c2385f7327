package qr_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/faregate/faregate/qr"
	"github.com/faregate/faregate/rider"
	"github.com/stretchr/testify/require"
)

// t0 is the tap time of most tests: 2026-11-23 08:00:00 UTC.
var t0 = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

// testKey returns a deterministic Ed25519 key named name.
func testKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("faregate qr test key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func testToken(name string) rider.Token {
	return rider.NewToken([]byte("agency token key"), name, "00")
}

// newDevice issues a device credential for token, signed by issuer, valid
// for a week around t0.
func newDevice(t testing.TB, issuer ed25519.PrivateKey, name string) *qr.Device {
	t.Helper()
	dk := testKey("device " + name)
	cred := qr.Credential{
		Token:     testToken(name),
		Device:    qr.DeviceKey(pubOf(dk)),
		NotBefore: t0.Add(-72 * time.Hour),
		NotAfter:  t0.Add(96 * time.Hour),
		Category:  qr.Adult,
	}
	require.NoError(t, cred.Sign(issuer))
	return &qr.Device{Credential: cred, Key: dk}
}

func code(t testing.TB, d *qr.Device, at time.Time, counter uint32, challenge []byte) []byte {
	t.Helper()
	b, err := d.Code(at, counter, challenge)
	require.NoError(t, err)
	return b
}

func issuers(t testing.TB, keys ...ed25519.PrivateKey) *qr.Issuers {
	t.Helper()
	var pubs []ed25519.PublicKey
	for _, k := range keys {
		pubs = append(pubs, pubOf(k))
	}
	s, err := qr.NewIssuers(pubs...)
	require.NoError(t, err)
	return s
}

// clock is a settable gate clock.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

type denySet map[rider.Token]bool

func (d denySet) Contains(t rider.Token) bool { return d[t] }

func requireReason(t *testing.T, want qr.Reason, err error) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, want, qr.ReasonOf(err), "error: %v", err)
	require.ErrorIs(t, err, (&qr.Error{Reason: want}).Unwrap())
}
