package qr_test

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/faregate/faregate/qr"
	"github.com/stretchr/testify/require"
)

func TestCodeRoundTrip(t *testing.T) {
	issuer := testKey("issuer 1")
	d := newDevice(t, issuer, "alice")
	for _, ch := range [][]byte{nil, {1, 2, 3}, make([]byte, qr.MaxChallenge)} {
		b := code(t, d, t0, 42, ch)
		require.Len(t, b, qr.MinPayloadSize+len(ch))
		text := qr.Text(b)
		require.True(t, strings.HasPrefix(text, qr.TextPrefix))
		for _, r := range text {
			require.Contains(t, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", string(r), "QR alphanumeric alphabet only")
		}
		c, err := qr.Parse(text + "\r\n")
		require.NoError(t, err)
		require.Equal(t, b, c.Payload())
		require.Equal(t, d.Credential, c.Credential)
		require.Equal(t, t0, c.Time)
		require.Equal(t, uint32(42), c.Counter)
		if len(ch) == 0 {
			require.Nil(t, c.Challenge)
		} else {
			require.Equal(t, ch, c.Challenge)
		}
		require.NoError(t, c.VerifySignature())
		require.NoError(t, c.Credential.VerifySignature(pubOf(issuer)))
		require.Equal(t, qr.KeyIDOf(pubOf(issuer)), c.Credential.KeyID)
	}
}

func TestCredentialRoundTrip(t *testing.T) {
	d := newDevice(t, testKey("issuer 1"), "bob")
	d.Credential.Category = qr.Senior
	b, err := d.Credential.MarshalBinary()
	require.NoError(t, err)
	require.Len(t, b, qr.CredentialSize)
	got, err := qr.ParseCredential(b)
	require.NoError(t, err)
	require.Equal(t, d.Credential, *got)
	_, err = qr.ParseCredential(b[:100])
	requireReason(t, qr.ReasonMalformed, err)
}

func TestDeviceRefusesToMakeBadCodes(t *testing.T) {
	d := newDevice(t, testKey("issuer 1"), "carol")
	_, err := d.Code(t0, 1, make([]byte, qr.MaxChallenge+1))
	require.Error(t, err)
	other := *d
	other.Key = testKey("someone else")
	_, err = other.Code(t0, 1, nil)
	require.ErrorContains(t, err, "does not match")
	_, err = d.Code(time.Unix(-1, 0), 1, nil)
	require.Error(t, err)
	bad := d.Credential
	bad.NotAfter = bad.NotBefore.Add(-time.Second)
	require.Error(t, bad.Sign(testKey("issuer 1")))
}

func TestParseRefusesMalformed(t *testing.T) {
	d := newDevice(t, testKey("issuer 1"), "dave")
	good := code(t, d, t0, 7, []byte{9, 9})

	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, tc := range map[string]struct {
		b    []byte
		want qr.Reason
	}{
		"empty":                 {nil, qr.ReasonMalformed},
		"short":                 {good[:qr.MinPayloadSize-1], qr.ReasonMalformed},
		"one byte short":        {good[:len(good)-1], qr.ReasonMalformed},
		"trailing byte":         {append(append([]byte(nil), good...), 0), qr.ReasonMalformed},
		"too long":              {make([]byte, qr.MaxPayloadSize+1), qr.ReasonUnsupportedVersion},
		"version 2":             {mutate(func(b []byte) []byte { b[0] = 2; return b }), qr.ReasonUnsupportedVersion},
		"challenge too big":     {mutate(func(b []byte) []byte { b[132] = 17; return b }), qr.ReasonMalformed},
		"challenge length lies": {mutate(func(b []byte) []byte { b[132] = 3; return b }), qr.ReasonMalformed},
		"validity reversed":     {mutate(func(b []byte) []byte { b[55], b[56], b[57], b[58] = 0, 0, 0, 0; return b }), qr.ReasonMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := qr.ParseBinary(tc.b)
			requireReason(t, tc.want, err)
		})
	}
	for name, text := range map[string]string{
		"no prefix":     strings.TrimPrefix(qr.Text(good), qr.TextPrefix),
		"lower case":    strings.ToLower(qr.Text(good)),
		"trailing junk": qr.Text(good) + "0",
		"too long":      qr.TextPrefix + strings.Repeat("0", qr.MaxTextSize),
		"space trimmed": strings.TrimSpace(qr.Text(good)) + "\t",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := qr.Parse(text)
			requireReason(t, qr.ReasonMalformed, err)
		})
	}
}

func TestKeyIDAndIssuers(t *testing.T) {
	a, b := pubOf(testKey("issuer 1")), pubOf(testKey("issuer 2"))
	require.NotEqual(t, qr.KeyIDOf(a), qr.KeyIDOf(b))
	s, err := qr.NewIssuers(a, b, a)
	require.NoError(t, err)
	require.Equal(t, 2, s.Len())
	got, ok := s.Lookup(qr.KeyIDOf(b))
	require.True(t, ok)
	require.Equal(t, b, got)
	_, err = qr.NewIssuers(ed25519.PublicKey{1, 2, 3})
	require.Error(t, err)
}

func TestCategory(t *testing.T) {
	for _, n := range []string{"adult", "child", "senior", "reduced"} {
		c, err := qr.ParseCategory(n)
		require.NoError(t, err)
		require.Equal(t, n, c.String())
	}
	_, err := qr.ParseCategory("pensioner")
	require.Error(t, err)
	require.Equal(t, "category-9", qr.Category(9).String())
}

func TestParseBinaryCopiesItsInput(t *testing.T) {
	d := newDevice(t, testKey("issuer 1"), "erin")
	b := code(t, d, t0, 5, []byte{1, 2})
	want := append([]byte(nil), b...)
	c, err := qr.ParseBinary(b)
	require.NoError(t, err)
	clear(b) // the caller reuses its buffer
	require.Equal(t, want, c.Payload())
	require.Equal(t, []byte{1, 2}, c.Challenge)
	require.NoError(t, c.VerifySignature())
}
