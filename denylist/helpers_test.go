package denylist

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testKey returns a fixed key pair; seed picks one of several.
func testKey(seed byte) (ed25519.PublicKey, ed25519.PrivateKey) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	return key.Public().(ed25519.PublicKey), key
}

var testCreated = time.Date(2026, 11, 23, 4, 0, 0, 0, time.UTC)

// randTokens returns n random tokens from a seeded generator.
func randTokens(seed uint64, n int) []Token {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	tokens := make([]Token, n)
	for i := range tokens {
		binary.LittleEndian.PutUint64(tokens[i][:8], rng.Uint64())
		binary.LittleEndian.PutUint64(tokens[i][8:], rng.Uint64())
	}
	return tokens
}

func mustSign(t testing.TB, key ed25519.PrivateKey, version uint64, set *Set) *List {
	t.Helper()
	l, err := Sign(key, "test", version, testCreated.Add(time.Duration(version)*time.Minute), set)
	require.NoError(t, err)
	return l
}

func encodeList(t testing.TB, l *List) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := l.WriteTo(&buf)
	require.NoError(t, err)
	return buf.Bytes()
}

func signedDelta(t testing.TB, key ed25519.PrivateKey, from, to *List) []byte {
	t.Helper()
	d, err := Diff(from, to)
	require.NoError(t, err)
	b, err := d.Sign(key)
	require.NoError(t, err)
	return b
}

func fpsOf(s *Set) []uint64 {
	var fps []uint64
	for fp := range s.All() {
		fps = append(fps, fp)
	}
	return fps
}
