package denylist

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// A snapshot read from a file whose size agrees with its header is built
// with one allocation of the set, not by doubling (which held about three
// times the set at the peak: 230 MB for a gate's 10 M-entry list). A
// stream of unknown size still allocates only as bytes arrive.
func TestSnapshotFileAllocatesTheSetOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 3 M-entry list")
	}
	const n = 3 << 20
	pub, key := testKey(1)
	l := mustSign(t, key, 1, NewSetOfTokens(randTokens(7, n)))
	b := encodeList(t, l)
	setBytes := uint64(l.set.SizeBytes())

	alloc := func(read func() (*List, error)) uint64 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got, err := read()
		runtime.ReadMemStats(&after)
		require.NoError(t, err)
		require.Equal(t, n, got.Len())
		return after.TotalAlloc - before.TotalAlloc
	}
	sized := alloc(func() (*List, error) { return readSnapshotFile(bytes.NewReader(b), int64(len(b)), pub) })
	unsized := alloc(func() (*List, error) { return readSnapshotFile(bytes.NewReader(b), -1, pub) })
	t.Logf("set %d MB; allocated %d MB with the size known, %d MB without", setBytes>>20, sized>>20, unsized>>20)
	require.Less(t, sized, setBytes+setBytes/4, "one allocation of the set, plus buffers")
	require.Greater(t, unsized, sized+setBytes/2, "without a known size the set grows as bytes arrive")

	// A size that disagrees with the header (truncated, padded) is not
	// trusted, and the file is refused.
	_, err := readSnapshotFile(bytes.NewReader(b[:len(b)-1]), int64(len(b)-1), pub)
	require.ErrorIs(t, err, ErrTruncated)
}
