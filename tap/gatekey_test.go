package tap

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGateKeyRoundTrip(t *testing.T) {
	key, err := GenerateGateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	require.NoError(t, err)
	kp, err := MarshalGateKey(key)
	require.NoError(t, err)
	pp, err := MarshalGatePublicKey(key.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	k2, err := ParseGateKey(kp)
	require.NoError(t, err)
	require.True(t, key.Equal(k2))
	p2, err := ParseGatePublicKey(pp)
	require.NoError(t, err)
	require.True(t, key.Public().(ed25519.PublicKey).Equal(p2))

	// The wrong block, the wrong algorithm.
	_, err = ParseGateKey(pp)
	require.ErrorIs(t, err, ErrGateKey)
	_, err = ParseGatePublicKey(kp)
	require.ErrorIs(t, err, ErrGateKey)
	vault, err := GenerateVaultKey(nil)
	require.NoError(t, err)
	vk, err := MarshalVaultKey(vault)
	require.NoError(t, err)
	_, err = ParseGateKey(vk)
	require.ErrorIs(t, err, ErrGateKey)
	vp, err := MarshalVaultPublicKey(vault.PublicKey())
	require.NoError(t, err)
	_, err = ParseGatePublicKey(vp)
	require.ErrorIs(t, err, ErrGateKey)
}

func FuzzParseGateKey(f *testing.F) {
	key, _ := GenerateGateKey(nil)
	kp, _ := MarshalGateKey(key)
	pp, _ := MarshalGatePublicKey(key.Public().(ed25519.PublicKey))
	f.Add(kp)
	f.Add(pp)
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseGateKey(b)       //nolint:errcheck // must not panic
		ParseGatePublicKey(b) //nolint:errcheck // must not panic
	})
}
