package denylist

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestApplyRefuses(t *testing.T) {
	pub, key := testKey(1)
	v1 := mustSign(t, key, 1, NewSet([]uint64{10, 20, 30}))
	v2 := mustSign(t, key, 2, NewSet([]uint64{10, 25}))
	v3 := mustSign(t, key, 3, NewSet([]uint64{25}))
	read := func(b []byte) *Delta {
		d, err := ReadDelta(bytes.NewReader(b), pub)
		require.NoError(t, err)
		return d
	}
	d12 := read(signedDelta(t, key, v1, v2))
	d23 := read(signedDelta(t, key, v2, v3))
	other, err := Sign(key, "other", 1, testCreated, NewSet([]uint64{10, 20, 30}))
	require.NoError(t, err)
	// A v1 that differs from the back office's v1.
	forged := mustSign(t, key, 1, NewSet([]uint64{10, 20, 31}))
	// v1 with one more entry: adds and removes fit, the count does not.
	bigger := mustSign(t, key, 1, NewSet([]uint64{10, 20, 30, 99}))

	tests := []struct {
		name string
		list *List
		d    *Delta
		want error
	}{
		{"other list", other, d12, ErrListID},
		{"replay of the same delta", v2, d12, ErrReplay},
		{"replay of an older delta", v3, d12, ErrReplay},
		{"gap", v1, d23, ErrGap},
		{"gap from empty", Empty("test"), d12, ErrGap},
		{"removes an absent entry", forged, d12, ErrInconsistent},
		{"count differs", bigger, d12, ErrInconsistent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fpsOf(tt.list.Set())
			_, err := tt.list.Apply(tt.d)
			require.ErrorIs(t, err, tt.want)
			require.Equal(t, before, fpsOf(tt.list.Set()), "list unchanged")
		})
	}

	var ve *VersionError
	_, err = v1.Apply(d23)
	require.True(t, errors.As(err, &ve))
	require.Equal(t, VersionError{Have: 1, From: 2, To: 3, err: ErrGap}, *ve)
	require.Equal(t, "denylist: version gap: list is at version 1, delta is 2→3", err.Error())

	bad := *d12
	bad.Add = []uint64{40, 25}
	_, err = v1.Apply(&bad)
	require.ErrorIs(t, err, ErrMalformed)

	require.ErrorIs(t, CheckSnapshot(v2, v1), ErrReplay)
	require.ErrorIs(t, CheckSnapshot(v2, other), ErrListID)
	require.NoError(t, CheckSnapshot(v1, v2))
}

// TestWriteVerifiedDetectsDivergence: a delta whose counts fit but whose
// result is not the back office's snapshot is caught when the result is
// written.
func TestWriteVerifiedDetectsDivergence(t *testing.T) {
	pub, key := testKey(1)
	v1 := mustSign(t, key, 1, NewSet([]uint64{10, 20}))
	v2 := mustSign(t, key, 2, NewSet([]uint64{10, 20, 30}))
	gate := mustSign(t, key, 1, NewSet([]uint64{10, 21})) // diverged
	d, err := ReadDelta(bytes.NewReader(signedDelta(t, key, v1, v2)), pub)
	require.NoError(t, err)
	got, err := gate.Apply(d)
	require.NoError(t, err, "adds 30: fits the diverged list too")
	require.ErrorIs(t, got.WriteVerified(&bytes.Buffer{}, pub), ErrInconsistent)
	require.ErrorIs(t, got.Verify(pub), ErrInconsistent)

	good, err := v1.Apply(d)
	require.NoError(t, err)
	require.NoError(t, good.Verify(pub))
}

func TestDiffRefuses(t *testing.T) {
	_, key := testKey(1)
	v1 := mustSign(t, key, 1, nil)
	v2 := mustSign(t, key, 2, nil)
	other, err := Sign(key, "other", 3, testCreated, nil)
	require.NoError(t, err)
	_, err = Diff(v2, v1)
	require.Error(t, err)
	_, err = Diff(v1, other)
	require.ErrorIs(t, err, ErrListID)
	_, err = Diff(Empty("test"), v1)
	require.Error(t, err)
}

// TestDeltasEqualSnapshot is the property test: for random histories,
// applying the deltas in order to the first snapshot gives, byte for byte,
// the snapshot the back office builds of the last version; so does one
// delta that skips versions.
func TestDeltasEqualSnapshot(t *testing.T) {
	pub, key := testKey(1)
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 99))
		pool := randTokens(seed, 400)
		member := make(map[Token]bool)
		var versions []*List
		for v := uint64(1); v <= uint64(2+rng.IntN(10)); v++ {
			for range rng.IntN(60) {
				tok := pool[rng.IntN(len(pool))]
				member[tok] = !member[tok]
			}
			var tokens []Token
			for tok, in := range member {
				if in {
					tokens = append(tokens, tok)
				}
			}
			versions = append(versions, mustSign(t, key, v, NewSetOfTokens(tokens)))
		}
		last := versions[len(versions)-1]
		want := encodeList(t, last)

		list, err := ReadSnapshot(bytes.NewReader(encodeList(t, versions[0])), pub)
		require.NoError(t, err)
		for i := 1; i < len(versions); i++ {
			d, err := ReadDelta(bytes.NewReader(signedDelta(t, key, versions[i-1], versions[i])), pub)
			require.NoError(t, err)
			list, err = list.Apply(d)
			require.NoError(t, err, "seed %d version %d", seed, i+1)
		}
		var got bytes.Buffer
		require.NoError(t, list.WriteVerified(&got, pub), "seed %d", seed)
		require.Equal(t, want, got.Bytes(), "seed %d", seed)

		if len(versions) > 2 {
			d, err := ReadDelta(bytes.NewReader(signedDelta(t, key, versions[0], last)), pub)
			require.NoError(t, err)
			skip, err := versions[0].Apply(d)
			require.NoError(t, err)
			require.Equal(t, fpsOf(last.Set()), fpsOf(skip.Set()))
			require.NoError(t, skip.Verify(pub))
		}
		for tok, in := range member {
			require.Equal(t, in, list.Contains(tok))
		}
		require.True(t, slices.IsSorted(fpsOf(list.Set())))
	}
}
