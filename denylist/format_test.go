package denylist

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// resign replaces the trailing signature of a file with a valid one, so a
// test shows that the decoder, not the signature, refuses a mutation.
func resign(t testing.TB, b []byte, key ed25519.PrivateKey) []byte {
	t.Helper()
	b = bytes.Clone(b)
	d := sha512.Sum512(b[:len(b)-SignatureSize])
	sig, err := key.Sign(nil, d[:], sigOpts)
	require.NoError(t, err)
	copy(b[len(b)-SignatureSize:], sig)
	return b
}

func TestSnapshotRoundTrip(t *testing.T) {
	pub, key := testKey(1)
	set := NewSetOfTokens(randTokens(1, 1000))
	l := mustSign(t, key, 7, set)
	b := encodeList(t, l)
	require.Len(t, b, HeaderSize+8*1000+SignatureSize)

	got, err := ReadSnapshot(bytes.NewReader(b), pub)
	require.NoError(t, err)
	require.Equal(t, ListID("test"), got.ID())
	require.Equal(t, uint64(7), got.Version())
	require.Equal(t, l.Created(), got.Created())
	require.Equal(t, fpsOf(set), fpsOf(got.Set()))
	require.Equal(t, l.Signature(), got.Signature())
	require.Equal(t, b, encodeList(t, got), "re-encoding is byte-identical")

	info, err := Inspect(bytes.NewReader(b))
	require.NoError(t, err)
	require.Equal(t, KindSnapshot, info.Kind)
	require.Equal(t, uint64(1000), info.Count)
	require.Equal(t, int64(len(b)), info.Size)
	require.NoError(t, info.Verify(pub))
	otherPub, _ := testKey(2)
	require.ErrorIs(t, info.Verify(otherPub), ErrSignature)

	var buf bytes.Buffer
	require.NoError(t, got.WriteVerified(&buf, pub))
	require.Equal(t, b, buf.Bytes())
	require.NoError(t, got.Verify(pub))
}

func TestEmptySnapshot(t *testing.T) {
	pub, key := testKey(1)
	l := mustSign(t, key, 1, nil)
	got, err := ReadSnapshot(bytes.NewReader(encodeList(t, l)), pub)
	require.NoError(t, err)
	require.Equal(t, 0, got.Len())
	require.False(t, got.Contains(Token{}))
}

func TestDeltaRoundTrip(t *testing.T) {
	pub, key := testKey(1)
	tokens := randTokens(2, 300)
	v1 := mustSign(t, key, 1, NewSetOfTokens(tokens[:200]))
	v2 := mustSign(t, key, 2, NewSetOfTokens(tokens[100:]))
	b := signedDelta(t, key, v1, v2)
	require.Len(t, b, HeaderSize+8*200+2*SignatureSize)

	d, err := ReadDelta(bytes.NewReader(b), pub)
	require.NoError(t, err)
	require.Equal(t, uint64(1), d.From)
	require.Equal(t, uint64(2), d.To)
	require.Len(t, d.Add, 100)
	require.Len(t, d.Remove, 100)
	require.Equal(t, uint64(200), d.Count)
	require.Equal(t, v2.Created(), d.Created)

	got, err := v1.Apply(d)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, got.WriteVerified(&buf, pub))
	require.Equal(t, encodeList(t, v2), buf.Bytes(), "v1 + delta is v2, byte for byte")
}

func TestReadKind(t *testing.T) {
	pub, key := testKey(1)
	v1 := mustSign(t, key, 1, NewSet([]uint64{1}))
	v2 := mustSign(t, key, 2, NewSet([]uint64{2}))
	_, err := ReadDelta(bytes.NewReader(encodeList(t, v1)), pub)
	require.ErrorIs(t, err, ErrKind)
	_, err = ReadSnapshot(bytes.NewReader(signedDelta(t, key, v1, v2)), pub)
	require.ErrorIs(t, err, ErrKind)
	_, err = ReadSnapshot(bytes.NewReader(encodeList(t, v1)), pub[:31])
	require.ErrorIs(t, err, ErrKey)
}

// TestDecodeRefuses mutates valid files; each mutation is re-signed so the
// refusal comes from the structural checks.
func TestDecodeRefuses(t *testing.T) {
	pub, key := testKey(1)
	v1 := mustSign(t, key, 1, NewSet([]uint64{10, 20, 30}))
	v2 := mustSign(t, key, 2, NewSet([]uint64{10, 25, 40}))
	snap := encodeList(t, v1)
	delta := signedDelta(t, key, v1, v2) // adds 25, 40; removes 20, 30
	put64 := func(b []byte, off int, v uint64) []byte {
		b = bytes.Clone(b)
		binary.BigEndian.PutUint64(b[off:], v)
		return b
	}
	set := func(b []byte, off int, v ...byte) []byte {
		b = bytes.Clone(b)
		copy(b[off:], v)
		return b
	}
	tests := []struct {
		name   string
		file   []byte
		want   error
		reason string
	}{
		{"bad magic", set(snap, 0, 'X'), ErrMalformed, "bad magic"},
		{"format version 2", set(snap, 4, 2), ErrMalformed, "unsupported format version 2"},
		{"unknown kind", set(snap, 5, 3), ErrMalformed, "unknown kind"},
		{"reserved", set(snap, 7, 1), ErrMalformed, "reserved"},
		{"list id not padded", set(snap, 20, 'x'), ErrMalformed, "NUL-padded"},
		{"list id empty", set(snap, 8, 0, 0, 0, 0), ErrMalformed, "invalid list id"},
		{"list id upper case", set(snap, 8, 'T'), ErrMalformed, "invalid list id"},
		{"version 0", put64(snap, 32, 0), ErrMalformed, "version 0"},
		{"snapshot with from", put64(snap, 24, 1), ErrMalformed, "from version"},
		{"snapshot with adds", put64(snap, 56, 1), ErrMalformed, "delta counts"},
		{"count too large", put64(snap, 48, MaxEntries+1), ErrMalformed, "count too large"},
		{"created out of range", put64(snap, 40, 1<<63), ErrMalformed, "created"},
		{"count beyond the data", put64(snap, 48, 4), ErrTruncated, "signature"},
		{"huge count, short file", put64(snap, 48, MaxEntries), ErrTruncated, "fingerprints"},
		{"count short of the data", put64(snap, 48, 2), ErrMalformed, "trailing bytes"},
		{"trailing byte", append(bytes.Clone(snap), 0), ErrMalformed, "trailing bytes"},
		{"unsorted", put64(snap, HeaderSize+8, 5), ErrMalformed, "not strictly increasing"},
		{"duplicate", put64(snap, HeaderSize+8, 10), ErrMalformed, "not strictly increasing"},
		{"delta from 0", put64(delta, 24, 0), ErrMalformed, "not increasing"},
		{"delta backwards", put64(delta, 24, 2), ErrMalformed, "not increasing"},
		{"delta adds too many", put64(delta, 56, MaxEntries+1), ErrMalformed, "too large"},
		{"delta adds beyond count", put64(delta, 48, 1), ErrMalformed, "count smaller"},
		{"delta unsorted adds", put64(delta, HeaderSize, 41), ErrMalformed, "added fingerprints not strictly increasing"},
		{"delta unsorted removes", put64(delta, HeaderSize+24, 19), ErrMalformed, "removed fingerprints not strictly increasing"},
		{"delta add also removed", put64(delta, HeaderSize+8, 30), ErrMalformed, "both added and removed"},
		{"delta short", put64(delta, 64, 3), ErrTruncated, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.file
			if len(b) >= HeaderSize+SignatureSize {
				b = resign(t, b, key)
			}
			_, _, err := Read(bytes.NewReader(b), pub)
			require.ErrorIs(t, err, tt.want)
			var fe *FormatError
			require.True(t, errors.As(err, &fe), "%v", err)
			require.Contains(t, fe.Reason, tt.reason)
			_, err = Inspect(bytes.NewReader(b))
			require.ErrorIs(t, err, tt.want)
		})
	}
}

func TestDecodeTruncatedEverywhere(t *testing.T) {
	pub, key := testKey(1)
	v1 := mustSign(t, key, 1, NewSet([]uint64{10, 20, 30}))
	v2 := mustSign(t, key, 2, NewSet([]uint64{10, 25, 40}))
	for name, file := range map[string][]byte{"snapshot": encodeList(t, v1), "delta": signedDelta(t, key, v1, v2)} {
		t.Run(name, func(t *testing.T) {
			for n := range len(file) {
				_, _, err := Read(bytes.NewReader(file[:n]), pub)
				require.ErrorIs(t, err, ErrTruncated, "length %d", n)
			}
		})
	}
}

// TestSignatureCoversEveryByte flips each bit of small files: none may be
// accepted.
func TestSignatureCoversEveryByte(t *testing.T) {
	pub, key := testKey(1)
	v1 := mustSign(t, key, 1, NewSet([]uint64{10, 20, 30}))
	v2 := mustSign(t, key, 2, NewSet([]uint64{10, 25, 40}))
	for name, file := range map[string][]byte{"snapshot": encodeList(t, v1), "delta": signedDelta(t, key, v1, v2)} {
		t.Run(name, func(t *testing.T) {
			for i := range file {
				for bit := range 8 {
					b := bytes.Clone(file)
					b[i] ^= 1 << bit
					_, _, err := Read(bytes.NewReader(b), pub)
					require.Error(t, err, "byte %d bit %d", i, bit)
				}
			}
		})
	}
}

func TestReadWrongKey(t *testing.T) {
	_, key := testKey(1)
	otherPub, _ := testKey(2)
	v1 := mustSign(t, key, 1, NewSet([]uint64{1, 2}))
	_, err := ReadSnapshot(bytes.NewReader(encodeList(t, v1)), otherPub)
	require.ErrorIs(t, err, ErrSignature)
	require.Equal(t, "denylist: bad signature", err.Error())
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestReadError(t *testing.T) {
	pub, _ := testKey(1)
	boom := errors.New("boom")
	_, _, err := Read(failingReader{boom}, pub)
	require.ErrorIs(t, err, boom)
	_, _, err = Read(io.MultiReader(bytes.NewReader([]byte(Magic)), failingReader{boom}), pub)
	require.ErrorIs(t, err, boom)
}

func TestSignRefuses(t *testing.T) {
	_, key := testKey(1)
	_, err := Sign(key, "Bad", 1, testCreated, nil)
	require.ErrorIs(t, err, ErrInvalidListID)
	_, err = Sign(key, "ok", 0, testCreated, nil)
	require.Error(t, err)
	_, err = Sign(key, "ok", 1, time.Unix(-1, 0), nil)
	require.Error(t, err)
	_, err = Sign(key[:10], "ok", 1, testCreated, nil)
	require.ErrorIs(t, err, ErrKey)

	d := &Delta{ListID: "ok", From: 1, To: 2, Created: testCreated, Count: 1, Add: []uint64{2, 1}, SnapshotSignature: make([]byte, 64)}
	_, err = d.Sign(key)
	require.ErrorIs(t, err, ErrMalformed)
	d = &Delta{ListID: "ok", From: 2, To: 2, Created: testCreated, SnapshotSignature: make([]byte, 64)}
	_, err = d.Sign(key)
	require.ErrorIs(t, err, ErrMalformed)
	d = &Delta{ListID: "ok", From: 1, To: 2}
	_, err = d.Sign(key)
	require.Error(t, err)
}
