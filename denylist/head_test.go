package denylist

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHeadRoundTrip(t *testing.T) {
	pub, key := testKey(1)
	otherPub, _ := testKey(2)
	h := newHistory(t, 2)
	l := h.lists[1]
	issued := testCreated.Add(time.Hour)
	head := HeadOf(l, issued, 15*time.Minute)
	b, err := SignHead(key, head)
	require.NoError(t, err)
	require.Len(t, b, HeadSize)
	got, err := ParseHead(b, pub)
	require.NoError(t, err)
	require.Equal(t, head, got)
	require.False(t, got.Expired(issued.Add(15*time.Minute-time.Millisecond)))
	require.True(t, got.Expired(issued.Add(15*time.Minute)))

	// The content hash tells apart lists that share a version.
	again, err := ReadSnapshot(bytes.NewReader(h.snaps[1]), pub)
	require.NoError(t, err)
	require.Equal(t, l.ContentHash(), again.ContentHash())
	require.NotEqual(t, l.ContentHash(), mustSign(t, key, 2, NewSetOfTokens(h.tokens[:3])).ContentHash())
	require.NotEqual(t, Empty("test").ContentHash(), l.ContentHash())

	_, err = ParseHead(b, otherPub)
	require.ErrorIs(t, err, ErrSignature)
	bad := bytes.Clone(b)
	bad[30] ^= 1
	_, err = ParseHead(bad, pub)
	require.ErrorIs(t, err, ErrSignature)
	for name, in := range map[string][]byte{
		"short":     b[:HeadSize-1],
		"long":      append(bytes.Clone(b), 0),
		"magic":     append([]byte("FGDL"), b[4:]...),
		"snapshot":  h.snaps[0][:HeadSize],
		"reserved":  func() []byte { c := bytes.Clone(b); c[6] = 1; return c }(),
		"expiry":    func() []byte { c := bytes.Clone(b); binary.BigEndian.PutUint64(c[40:], 0); return c }(),
		"list id":   func() []byte { c := bytes.Clone(b); c[8] = 'A'; return c }(),
		"empty":     nil,
		"id padded": func() []byte { c := bytes.Clone(b); c[20] = 'x'; return c }(),
	} {
		_, err := ParseHead(in, pub)
		require.Error(t, err, name)
		require.NotErrorIs(t, err, ErrSignature, name+": refused before the signature")
	}
	_, err = SignHead(key, Head{ListID: "test", Issued: issued, Expires: issued})
	require.Error(t, err)
}

// TestReplicaBoundsByHeader: a file announcing more entries than the gate
// takes, or a delta whose counts cannot fit, is refused on its header and
// its body never read.
func TestReplicaBoundsByHeader(t *testing.T) {
	h := newHistory(t, 3)
	pub, key := testKey(1)
	dir := t.TempDir()
	r, err := OpenReplica(context.Background(), dir, ReplicaConfig{ListID: "test", PublicKey: pub, MaxEntries: 100})
	require.NoError(t, err)
	update(t, r, h.snaps[0])
	files := dirNames(t, dir)

	big := mustSign(t, key, 5, NewSetOfTokens(randTokens(7, 101)))
	body := &countingReader{r: bytes.NewReader(encodeList(t, big))}
	_, err = r.Update(context.Background(), body)
	require.ErrorIs(t, err, ErrTooLarge)
	require.LessOrEqual(t, body.n, int64(1<<20), "no more than one buffer read")

	// A delta 1→2 whose header claims one more removal than it has.
	d := bytes.Clone(h.deltas[0])
	binary.BigEndian.PutUint64(d[64:], binary.BigEndian.Uint64(d[64:])+1)
	_, err = r.Update(context.Background(), bytes.NewReader(d))
	require.ErrorIs(t, err, ErrInconsistent)
	require.Equal(t, uint64(0), r.Since(), "asks for a snapshot")
	require.Equal(t, files, dirNames(t, dir))

	// RequireSnapshot lets a snapshot of the same version replace the list.
	r2 := openReplica(t, t.TempDir())
	update(t, r2, h.snaps[1])
	_, err = r2.Update(context.Background(), bytes.NewReader(h.snaps[1]))
	require.ErrorIs(t, err, ErrReplay)
	r2.RequireSnapshot()
	require.Equal(t, uint64(0), r2.Since())
	update(t, r2, h.snaps[1])
	require.Equal(t, uint64(2), r2.Since())

	head, err := SignHead(key, HeadOf(h.lists[1], testCreated, time.Minute))
	require.NoError(t, err)
	got, err := r2.ParseHead(head)
	require.NoError(t, err)
	require.Equal(t, r2.List().ContentHash(), got.ContentHash)
	other, err := Sign(key, "other", 1, testCreated, nil)
	require.NoError(t, err)
	head, err = SignHead(key, HeadOf(other, testCreated, time.Minute))
	require.NoError(t, err)
	_, err = r2.ParseHead(head)
	require.ErrorIs(t, err, ErrListID)
}

type countingReader struct {
	r *bytes.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
