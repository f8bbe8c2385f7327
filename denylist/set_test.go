package denylist

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// fpSets are fingerprint distributions the set must handle exactly,
// including skewed ones where interpolation guesses badly.
func fpSets() map[string][]uint64 {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]uint64, 5000)
	for i := range random {
		random[i] = rng.Uint64()
	}
	oneBucket := make([]uint64, 3000) // all in bucket 0, clustered low
	for i := range oneBucket {
		oneBucket[i] = uint64(i * i)
	}
	edges := []uint64{0, 1, remMask, remMask + 1, math.MaxUint64 - 1, math.MaxUint64, 1 << 63}
	clusters := make([]uint64, 0, 4000) // dense runs at both ends of buckets
	for b := uint64(0); b < 20; b++ {
		for i := uint64(0); i < 100; i++ {
			clusters = append(clusters, b<<remBits|i, b<<remBits|(remMask-i))
		}
	}
	return map[string][]uint64{
		"empty": nil, "one": {42}, "random": random, "one bucket": oneBucket,
		"edges": edges, "clusters": clusters,
	}
}

func TestSetMembership(t *testing.T) {
	for name, fps := range fpSets() {
		t.Run(name, func(t *testing.T) {
			s := NewSet(append(slices.Clone(fps), fps...)) // duplicates collapse
			want := slices.Sorted(slices.Values(fps))
			want = slices.Compact(want)
			require.Equal(t, len(want), s.Len())
			require.Equal(t, want, fpsOf(s))
			for _, fp := range fps {
				require.True(t, s.ContainsFingerprint(fp), "missing %016X", fp)
			}
			// Neighbours of members are absent unless members themselves.
			in := make(map[uint64]bool, len(fps))
			for _, fp := range fps {
				in[fp] = true
			}
			for _, fp := range fps {
				for _, n := range []uint64{fp - 1, fp + 1, fp ^ 1<<40, fp ^ 1<<63} {
					require.Equal(t, in[n], s.ContainsFingerprint(n), "%016X", n)
				}
			}
		})
	}
}

// TestSetSubBuckets checks lookups through the sub-bucket index for every
// index width, including buckets too large for its one-byte starts.
func TestSetSubBuckets(t *testing.T) {
	require.Equal(t, uint(0), subBitsFor(100_000))
	require.Equal(t, uint(1), subBitsFor(1_000_000))
	require.Equal(t, uint(4), subBitsFor(10_000_000))
	sets := fpSets()
	rng := rand.New(rand.NewPCG(5, 6))
	big := make([]uint64, 0, 3000) // two buckets of 1000+ entries, the rest spread
	for range 1500 {
		big = append(big, 7<<remBits|rng.Uint64()&remMask, 9<<remBits|rng.Uint64()&(remMask>>3))
	}
	sets["big buckets"] = big
	for name, fps := range sets {
		for sb := uint(0); sb <= maxSubBits; sb++ {
			s := NewSet(fps)
			s.indexSub(sb)
			in := make(map[uint64]bool, len(fps))
			for _, fp := range fps {
				in[fp] = true
			}
			for _, fp := range fps {
				require.True(t, s.ContainsFingerprint(fp), "%s/%d: missing %016X", name, sb, fp)
				for _, n := range []uint64{fp - 1, fp + 1, fp ^ 1<<44, fp ^ 1<<47, fp ^ 1<<40} {
					require.Equal(t, in[n], s.ContainsFingerprint(n), "%s/%d: %016X", name, sb, n)
				}
			}
			for range 2000 {
				fp := rng.Uint64()
				require.Equal(t, in[fp], s.ContainsFingerprint(fp))
			}
		}
	}
}

func TestSetLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 1.1 M-entry set")
	}
	tokens := randTokens(9, 1_100_000)
	s := NewSetOfTokens(tokens[:1_000_000])
	require.Equal(t, uint(1), s.subBits)
	for i, tok := range tokens {
		if s.Contains(tok) != (i < 1_000_000) {
			t.Fatalf("token %d", i)
		}
	}
	next, err := s.apply(Fingerprints(tokens[1_000_000:]), nil)
	require.NoError(t, err)
	for _, tok := range tokens {
		if !next.Contains(tok) {
			t.Fatal("missing after apply")
		}
	}
}

func TestSetZeroValue(t *testing.T) {
	var s Set
	require.Equal(t, 0, s.Len())
	require.False(t, s.ContainsFingerprint(0))
	var nilSet *Set
	require.False(t, nilSet.Contains(Token{}))
}

func TestSetContainsToken(t *testing.T) {
	tokens := randTokens(7, 1000)
	s := NewSetOfTokens(tokens[:500])
	for i, tok := range tokens {
		require.Equal(t, i < 500, s.Contains(tok), "token %d", i)
	}
}

func TestSetApply(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for name, fps := range fpSets() {
		t.Run(name, func(t *testing.T) {
			base := NewSet(fps)
			members := fpsOf(base)
			// Remove a random half, add as many new ones.
			var removes, adds []uint64
			for _, fp := range members {
				if rng.IntN(2) == 0 {
					removes = append(removes, fp)
				}
			}
			for range len(members)/2 + 3 {
				fp := rng.Uint64()
				if !base.ContainsFingerprint(fp) {
					adds = append(adds, fp)
				}
			}
			adds = slices.Compact(slices.Sorted(slices.Values(adds)))
			got, err := base.apply(adds, removes)
			require.NoError(t, err)

			want := slices.Concat(adds)
			for _, fp := range members {
				if _, found := slices.BinarySearch(removes, fp); !found {
					want = append(want, fp)
				}
			}
			require.Equal(t, fpsOf(NewSet(want)), fpsOf(got))
			require.Equal(t, len(members), base.Len(), "base unchanged")
			for _, fp := range adds {
				require.True(t, got.ContainsFingerprint(fp))
			}
			for _, fp := range removes {
				require.False(t, got.ContainsFingerprint(fp))
			}
		})
	}
}

func TestSetApplyInconsistent(t *testing.T) {
	base := NewSet([]uint64{10, 20, 30})
	tests := []struct {
		name          string
		adds, removes []uint64
	}{
		{"add present", []uint64{20}, nil},
		{"remove absent", nil, []uint64{25}},
		{"remove more than held", nil, []uint64{10, 20, 30, 40}},
		{"remove from empty result", []uint64{}, []uint64{10, 20, 31}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := base.apply(tt.adds, tt.removes)
			require.ErrorIs(t, err, ErrInconsistent)
		})
	}
	_, err := (&Set{}).apply(nil, []uint64{1})
	require.ErrorIs(t, err, ErrInconsistent)

	empty, err := base.apply(nil, []uint64{10, 20, 30})
	require.NoError(t, err)
	require.Equal(t, 0, empty.Len())
}

func TestDiffSets(t *testing.T) {
	a := NewSet([]uint64{1, 2, 3, 5, 8})
	b := NewSet([]uint64{2, 3, 4, 8, 9})
	adds, removes := diffSets(a, b)
	require.Equal(t, []uint64{4, 9}, adds)
	require.Equal(t, []uint64{1, 5}, removes)
	got, err := a.apply(adds, removes)
	require.NoError(t, err)
	require.Equal(t, fpsOf(b), fpsOf(got))
}
