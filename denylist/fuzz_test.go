package denylist

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzDecode feeds arbitrary bytes to the decoder: it must never panic,
// never accept what it cannot account for, and anything it accepts must
// re-encode to the same bytes. Seeded with the golden files.
//
//	go test ./denylist -run '^$' -fuzz FuzzDecode -fuzztime 30s
func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.fgdl"))
	require.NoError(f, err)
	require.NotEmpty(f, files)
	for _, name := range files {
		b, err := os.ReadFile(name)
		require.NoError(f, err)
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(b[:HeaderSize])
	}
	f.Add([]byte{})
	f.Add([]byte(Magic))
	pub, err := ParsePublicKey(mustRead(f, filepath.Join(goldenDir, "test.pub")))
	require.NoError(f, err)

	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := Inspect(bytes.NewReader(data))
		if err != nil {
			_, _, err2 := Read(bytes.NewReader(data), pub)
			require.Error(t, err2)
			return
		}
		require.Equal(t, int64(len(data)), info.Size, "accepted bytes it did not account for")
		// The gate's two passes accept what decode accepts and agree on it.
		checked, err := decodeMode(bytes.NewReader(data), checkOnly)
		require.NoError(t, err)
		require.Equal(t, info.Signature, checked.Signature)
		built, err := decodeMode(bytes.NewReader(data), buildOnly)
		require.NoError(t, err)
		full, err := decode(bytes.NewReader(data))
		require.NoError(t, err)
		require.Equal(t, checked.digest, full.digest)
		require.Equal(t, full.add, built.add)
		require.Equal(t, full.remove, built.remove)
		list, delta, err := Read(bytes.NewReader(data), pub)
		if err != nil {
			require.ErrorIs(t, err, ErrSignature)
			return
		}
		var buf bytes.Buffer
		if list != nil {
			_, err = list.WriteTo(&buf)
			require.NoError(t, err)
		} else {
			b, err := delta.Sign(goldenKey())
			require.NoError(t, err)
			buf.Write(b)
		}
		require.Equal(t, data, buf.Bytes())
	})
}

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return b
}

// FuzzSetApply checks the set, its lookups and apply against a plain map
// for fingerprints drawn from the input, with every sub-bucket index width.
//
//	go test ./denylist -run '^$' -fuzz FuzzSetApply -fuzztime 30s
func FuzzSetApply(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, uint8(3))
	f.Add(bytes.Repeat([]byte{0xff, 0, 0x80, 1}, 64), uint8(17))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		var fps []uint64
		for len(data) >= 8 {
			fp := binary.LittleEndian.Uint64(data)
			if mode&1 != 0 {
				fp &= 0x0003_00FF_FFFF_0F0F // crowd a few buckets
			}
			fps = append(fps, fp)
			data = data[8:]
		}
		if len(fps) > 2000 {
			fps = fps[:2000]
		}
		half := len(fps) / 2
		base := NewSet(fps[:half])
		base.indexSub(uint(mode>>1) % (maxSubBits + 1))
		want := map[uint64]bool{}
		for _, fp := range fps[:half] {
			want[fp] = true
		}
		for _, fp := range fps {
			require.Equal(t, want[fp], base.ContainsFingerprint(fp))
			require.Equal(t, want[fp+1], base.ContainsFingerprint(fp+1))
		}
		// Toggle the second half: present ones are removed, absent ones added.
		var adds, removes []uint64
		for _, fp := range slices.Compact(slices.Sorted(slices.Values(fps[half:]))) {
			if want[fp] {
				removes = append(removes, fp)
				delete(want, fp)
			} else {
				adds = append(adds, fp)
				want[fp] = true
			}
		}
		next, err := base.apply(adds, removes)
		require.NoError(t, err)
		require.Equal(t, len(want), next.Len())
		for _, fp := range fps {
			require.Equal(t, want[fp], next.ContainsFingerprint(fp))
		}
		require.True(t, slices.IsSorted(fpsOf(next)))
	})
}

// FuzzParseHead feeds arbitrary bytes to the head statement parser: it must
// never panic, and what it accepts must carry the test key's signature and
// re-sign to the same bytes.
//
//	go test ./denylist -run '^$' -fuzz FuzzParseHead -fuzztime 30s
func FuzzParseHead(f *testing.F) {
	pub, err := ParsePublicKey(mustRead(f, filepath.Join(goldenDir, "test.pub")))
	require.NoError(f, err)
	key, err := ParsePrivateKey(mustRead(f, filepath.Join(goldenDir, "test.key")))
	require.NoError(f, err)
	snap, err := ReadSnapshot(bytes.NewReader(mustRead(f, filepath.Join(goldenDir, "snapshot-v3.fgdl"))), pub)
	require.NoError(f, err)
	head, err := SignHead(key, HeadOf(snap, snap.Created(), 15*time.Minute))
	require.NoError(f, err)
	f.Add(head)
	f.Add(head[:80])
	// A statement announcing a next key (format version 2).
	announce := HeadOf(snap, snap.Created(), 15*time.Minute)
	announce.NextKey = pub
	head2, err := SignHead(key, announce)
	require.NoError(f, err)
	f.Add(head2)
	f.Add(head2[:HeadSize])
	f.Add([]byte(HeadMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHead(data, pub)
		if err != nil {
			return
		}
		again, err := SignHead(key, h)
		require.NoError(t, err)
		require.Equal(t, data, again)
	})
}
