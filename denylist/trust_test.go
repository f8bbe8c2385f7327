package denylist

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHeadNextKey(t *testing.T) {
	pub, key := testKey(1)
	nextPub, _ := testKey(2)
	h := newHistory(t, 1)
	head := HeadOf(h.lists[0], testCreated, time.Minute)
	head.NextKey = nextPub
	b, err := SignHead(key, head)
	require.NoError(t, err)
	require.Len(t, b, HeadSizeNextKey)
	require.Equal(t, byte(2), b[4])
	got, err := ParseHead(b, pub)
	require.NoError(t, err)
	require.Equal(t, head, got)

	// The signature covers the announced key.
	bad := bytes.Clone(b)
	bad[90] ^= 1
	_, err = ParseHead(bad, pub)
	require.ErrorIs(t, err, ErrSignature)
	for name, in := range map[string][]byte{
		"short":      b[:HeadSizeNextKey-1],
		"v2 at v1":   b[:HeadSize],
		"long":       append(bytes.Clone(b), 0),
		"v1 too big": func() []byte { c := bytes.Clone(b); c[4] = 1; return c }(),
		"version 3":  func() []byte { c := bytes.Clone(b); c[4] = 3; return c }(),
	} {
		_, err := ParseHead(in, pub)
		require.Error(t, err, name)
		require.NotErrorIs(t, err, ErrSignature, name+": refused before the signature")
	}
	head.NextKey = nextPub[:31]
	_, err = SignHead(key, head)
	require.ErrorIs(t, err, ErrKey)
}

// TestReplicaKeyRotation: a gate learns a next key only from a head signed
// by a key it trusts, keeps it across restarts, accepts files signed by
// either, and retires the old key once it signs no file of the replica.
func TestReplicaKeyRotation(t *testing.T) {
	ctx := context.Background()
	oldPub, oldKey := testKey(1)
	newPub, newKey := testKey(2)
	roguePub, rogueKey := testKey(3)
	h := newHistory(t, 3) // signed by the old key
	dir := t.TempDir()
	r := openReplica(t, dir)
	update(t, r, h.snaps[0])
	headAt := func(key ed25519.PrivateKey, l *List, issued time.Time, next ed25519.PublicKey) []byte {
		hd := HeadOf(l, issued, time.Hour)
		hd.NextKey = next
		b, err := SignHead(key, hd)
		require.NoError(t, err)
		return b
	}
	t1 := testCreated.Add(time.Hour)

	// A forged announcement changes nothing.
	_, err := r.ParseHead(headAt(rogueKey, h.lists[0], t1, roguePub))
	require.ErrorIs(t, err, ErrSignature)
	require.Equal(t, []ed25519.PublicKey{oldPub}, r.TrustedKeys())
	// A file signed by an unannounced key is refused.
	_, err = r.Update(ctx, bytes.NewReader(signedDelta(t, newKey, h.lists[0], h.lists[1])))
	require.ErrorIs(t, err, ErrSignature)
	require.Equal(t, uint64(1), r.List().Version())

	// Announced by the old key: both are trusted, durably.
	_, err = r.ParseHead(headAt(oldKey, h.lists[0], t1, newPub))
	require.NoError(t, err)
	require.ElementsMatch(t, []ed25519.PublicKey{oldPub, newPub}, r.TrustedKeys())
	// A replayed older head (before the announcement) does not undo it.
	_, err = r.ParseHead(headAt(oldKey, h.lists[0], t1.Add(-time.Minute), nil))
	require.NoError(t, err)
	require.ElementsMatch(t, []ed25519.PublicKey{oldPub, newPub}, r.TrustedKeys())
	update(t, r, signedDelta(t, newKey, h.lists[0], h.lists[1]))
	r = openReplica(t, dir)
	require.ElementsMatch(t, []ed25519.PublicKey{oldPub, newPub}, r.TrustedKeys())
	require.Equal(t, uint64(2), r.List().Version(), "a delta signed by the new key reloads")

	// The new key signs without announcing: the old key still signs the
	// snapshot, so it stays until a snapshot by the new key replaces it.
	v2new := encodeList(t, mustSign(t, newKey, 2, h.lists[1].Set()))
	_, err = r.ParseHead(headAt(newKey, h.lists[1], t1.Add(time.Minute), nil))
	require.NoError(t, err)
	require.ElementsMatch(t, []ed25519.PublicKey{oldPub, newPub}, r.TrustedKeys())
	require.Equal(t, uint64(0), r.Since(), "asks for a snapshot")
	update(t, r, v2new)
	_, err = r.ParseHead(headAt(newKey, h.lists[1], t1.Add(2*time.Minute), nil))
	require.NoError(t, err)
	require.Equal(t, []ed25519.PublicKey{newPub}, r.TrustedKeys())
	_, err = r.ParseHead(headAt(oldKey, h.lists[1], t1.Add(3*time.Minute), newPub))
	require.ErrorIs(t, err, ErrSignature, "the old key is retired")
	_, err = r.Update(ctx, bytes.NewReader(h.deltas[1]))
	require.ErrorIs(t, err, ErrSignature)

	// Reopened with the old key configured, it still trusts only the new.
	r = openReplica(t, dir)
	require.Equal(t, []ed25519.PublicKey{newPub}, r.TrustedKeys())
	require.Equal(t, uint64(2), r.List().Version())

	// Configured with another key, the trust file grown from the old one
	// is ignored.
	r2, err := OpenReplica(ctx, t.TempDir(), ReplicaConfig{ListID: "test", PublicKey: newPub})
	require.NoError(t, err)
	require.Equal(t, []ed25519.PublicKey{newPub}, r2.TrustedKeys())
	b, err := os.ReadFile(filepath.Join(dir, TrustFile))
	require.NoError(t, err)
	keys, _, err := parseTrust(b, roguePub)
	require.NoError(t, err)
	require.Equal(t, []ed25519.PublicKey{roguePub}, keys)

	// A damaged trust file is an error, not a silent reset.
	require.NoError(t, os.WriteFile(filepath.Join(dir, TrustFile), []byte("{"), 0o644))
	_, err = OpenReplica(ctx, dir, ReplicaConfig{ListID: "test", PublicKey: oldPub})
	require.ErrorIs(t, err, ErrMalformed)
	require.ErrorIs(t, err, ErrTrustFile)
}

// TestReplicaRotationChain: rotations in a row, the gate never fetching a
// snapshot meanwhile: the key signing its snapshot stays, the rest follow
// the heads, and the trust file reloads.
func TestReplicaRotationChain(t *testing.T) {
	h := newHistory(t, 1) // signed by key 1
	dir := t.TempDir()
	r := openReplica(t, dir)
	update(t, r, h.snaps[0])
	var pubs []ed25519.PublicKey
	var keys []ed25519.PrivateKey
	for i := byte(1); i <= 5; i++ {
		p, k := testKey(i)
		pubs, keys = append(pubs, p), append(keys, k)
	}
	for i := range 4 { // key i+1 signs, announcing key i+2
		hd := HeadOf(h.lists[0], testCreated.Add(time.Duration(i)*time.Minute), time.Hour)
		hd.NextKey = pubs[i+1]
		b, err := SignHead(keys[i], hd)
		require.NoError(t, err)
		_, err = r.ParseHead(b)
		require.NoError(t, err, i)
		want := []ed25519.PublicKey{pubs[i], pubs[i+1], pubs[0]}
		if i == 0 {
			want = want[:2]
		}
		require.ElementsMatch(t, want, r.TrustedKeys(), i)
		require.ElementsMatch(t, want, openReplica(t, dir).TrustedKeys(), i)
	}
}

// FuzzParseTrust feeds arbitrary bytes to the trust file parser: it must
// never panic, and what it accepts holds 1 to maxTrustedKeys keys of the right size.
//
//	go test ./denylist -run '^$' -fuzz FuzzParseTrust -fuzztime 30s
func FuzzParseTrust(f *testing.F) {
	oldPub, _ := testKey(1)
	newPub, _ := testKey(2)
	dir := f.TempDir()
	r := &Replica{dir: dir, anchor: oldPub, keys: []ed25519.PublicKey{oldPub, newPub}, keysIssued: testCreated}
	require.NoError(f, r.saveTrust(context.Background()))
	b, err := os.ReadFile(filepath.Join(dir, TrustFile))
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte(`{"anchor":null,"keys":[]}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, _, err := parseTrust(data, oldPub)
		if err != nil {
			return
		}
		require.NotEmpty(t, keys)
		require.LessOrEqual(t, len(keys), maxTrustedKeys)
		for _, k := range keys {
			require.Len(t, k, ed25519.PublicKeySize)
		}
	})
}
