package denylist

import (
	"bytes"
	"context"
	"testing"
)

// BenchmarkReplicaUpdateSnapshot is a gate taking a 1 M-entry snapshot
// (8 MB) from the network: check and verify, persist, build, swap.
//
//	go test ./denylist -run '^$' -bench ReplicaUpdate -benchtime 20x
func BenchmarkReplicaUpdateSnapshot(b *testing.B) {
	_, key := testKey(1)
	file := encodeList(b, mustSign(b, key, 1, NewSetOfTokens(randTokens(9, 1<<20))))
	b.SetBytes(int64(len(file)))
	for b.Loop() {
		b.StopTimer()
		r := openReplica(b, b.TempDir())
		b.StartTimer()
		if _, err := r.Update(context.Background(), bytes.NewReader(file)); err != nil {
			b.Fatal(err)
		}
	}
}
