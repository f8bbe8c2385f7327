package denylist_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"time"

	"github.com/faregate/faregate/denylist"
)

// The back office signs two versions and the delta between them; a gate
// holding version 1 verifies and applies the delta.
func Example() {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	pub := key.Public().(ed25519.PublicKey)
	a, _ := denylist.ParseToken("00112233445566778899AABBCCDDEEFF")
	b, _ := denylist.ParseToken("ffeeddccbbaa99887766554433221100")
	created := time.Date(2026, 11, 23, 4, 0, 0, 0, time.UTC)

	// Back office.
	v1, _ := denylist.Sign(key, "metro", 1, created, denylist.NewSetOfTokens([]denylist.Token{a}))
	v2, _ := denylist.Sign(key, "metro", 2, created.Add(time.Minute), denylist.NewSetOfTokens([]denylist.Token{b}))
	var snapshot bytes.Buffer
	v1.WriteTo(&snapshot)
	d, _ := denylist.Diff(v1, v2)
	delta, _ := d.Sign(key)

	// Gate.
	list, err := denylist.ReadSnapshot(&snapshot, pub)
	if err != nil {
		panic(err)
	}
	dd, err := denylist.ReadDelta(bytes.NewReader(delta), pub)
	if err != nil {
		panic(err)
	}
	list, err = list.Apply(dd)
	if err != nil {
		panic(err)
	}
	fmt.Println(list.Version(), list.Contains(a), list.Contains(b))
	// Output: 2 false true
}

// A gate keeps its list in a directory; an update is verified, persisted
// and swapped in, and survives a restart.
func ExampleReplica() {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	cfg := denylist.ReplicaConfig{ListID: "metro", PublicKey: key.Public().(ed25519.PublicKey)}
	dir, _ := os.MkdirTemp("", "replica")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	r, err := denylist.OpenReplica(ctx, dir, cfg)
	if err != nil {
		panic(err)
	}
	t, _ := denylist.ParseToken("00112233445566778899aabbccddeeff")
	v1, _ := denylist.Sign(key, "metro", 1, time.Now(), denylist.NewSetOfTokens([]denylist.Token{t}))
	var file bytes.Buffer
	v1.WriteTo(&file)
	if _, err := r.Update(ctx, &file); err != nil {
		panic(err)
	}
	fmt.Println(r.Contains(t))

	again, _ := denylist.OpenReplica(ctx, dir, cfg)
	fmt.Println(again.List().Version(), again.Contains(t))
	// Output:
	// true
	// 1 true
}
