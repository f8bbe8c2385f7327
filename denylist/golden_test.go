package denylist

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/denylist")

// goldenDir holds the example files: test key pair, token files, snapshots
// v1..v3 and deltas between them. They pin the file format and seed the
// fuzz tests and the CLI tests.
const goldenDir = "../testdata/denylist"

// goldenKey is the test signing key; it signs nothing but test files.
func goldenKey() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed([]byte("faregate test deny-list key 0001"))
}

// goldenTokens are token i = SHA-256("faregate test token i")[:16].
func goldenTokens() []Token {
	tokens := make([]Token, 10)
	for i := range tokens {
		h := sha256.Sum256(fmt.Appendf(nil, "faregate test token %d", i))
		copy(tokens[i][:], h[:])
	}
	return tokens
}

// goldenVersions lists which tokens each version holds.
var goldenVersions = [][]int{
	1: {0, 1, 2, 3, 4, 5},
	2: {2, 3, 4, 5, 6, 7},
	3: {2, 3, 6, 7, 8, 9},
}

func goldenFiles(t testing.TB) map[string][]byte {
	t.Helper()
	key := goldenKey()
	files := map[string][]byte{}
	keyPEM, err := MarshalPrivateKey(key)
	require.NoError(t, err)
	pubPEM, err := MarshalPublicKey(key.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	files["test.key"], files["test.pub"] = keyPEM, pubPEM

	all := goldenTokens()
	lists := make([]*List, len(goldenVersions))
	for v := 1; v < len(goldenVersions); v++ {
		var tokens []Token
		var txt strings.Builder
		fmt.Fprintf(&txt, "# deny-list test tokens, version %d\n", v)
		for _, i := range goldenVersions[v] {
			tokens = append(tokens, all[i])
			s := all[i].String()
			if i%2 == 1 {
				s = strings.ToUpper(s) // both cases are accepted
			}
			txt.WriteString(s + "\n")
		}
		files[fmt.Sprintf("tokens-v%d.txt", v)] = []byte(txt.String())
		created := time.Date(2026, 11, 23, 4, v, 0, 0, time.UTC)
		lists[v], err = Sign(key, "test", uint64(v), created, NewSetOfTokens(tokens))
		require.NoError(t, err)
		files[fmt.Sprintf("snapshot-v%d.fgdl", v)] = encodeList(t, lists[v])
	}
	for _, fromTo := range [][2]int{{1, 2}, {2, 3}, {1, 3}} {
		files[fmt.Sprintf("delta-v%d-v%d.fgdl", fromTo[0], fromTo[1])] = signedDelta(t, key, lists[fromTo[0]], lists[fromTo[1]])
	}
	return files
}

func TestGoldenFiles(t *testing.T) {
	files := goldenFiles(t)
	for name, want := range files {
		path := filepath.Join(goldenDir, name)
		if *updateGolden {
			require.NoError(t, os.MkdirAll(goldenDir, 0o755))
			mode := os.FileMode(0o644)
			if strings.HasSuffix(name, ".key") {
				mode = 0o600
			}
			require.NoError(t, os.WriteFile(path, want, mode))
			continue
		}
		got, err := os.ReadFile(path)
		require.NoError(t, err, "run: go test ./denylist -run TestGoldenFiles -update")
		require.Equal(t, want, got, "%s differs: the file format changed?", name)
	}

	// The files verify and chain.
	pub, err := ParsePublicKey(files["test.pub"])
	require.NoError(t, err)
	v1, err := ReadSnapshot(bytes.NewReader(files["snapshot-v1.fgdl"]), pub)
	require.NoError(t, err)
	d12, err := ReadDelta(bytes.NewReader(files["delta-v1-v2.fgdl"]), pub)
	require.NoError(t, err)
	v2, err := v1.Apply(d12)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, v2.WriteVerified(&buf, pub))
	require.Equal(t, files["snapshot-v2.fgdl"], buf.Bytes())
	tokens, err := ReadTokens(bytes.NewReader(files["tokens-v2.txt"]))
	require.NoError(t, err)
	for _, tok := range tokens {
		require.True(t, v2.Contains(tok))
	}
	require.False(t, v2.Contains(goldenTokens()[0]))
}

func TestKeysPEM(t *testing.T) {
	files := goldenFiles(t)
	key, err := ParsePrivateKey(files["test.key"])
	require.NoError(t, err)
	require.Equal(t, goldenKey(), key)
	pub, err := ParsePublicKey(files["test.pub"])
	require.NoError(t, err)
	require.Equal(t, key.Public(), pub)

	tests := []struct {
		name string
		in   []byte
		pub  bool
	}{
		{"empty", nil, false},
		{"public as private", files["test.pub"], false},
		{"private as public", files["test.key"], true},
		{"trailing data", append(bytes.Clone(files["test.pub"]), "x"...), true},
		{"garbage", []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.pub {
				_, err = ParsePublicKey(tt.in)
			} else {
				_, err = ParsePrivateKey(tt.in)
			}
			require.ErrorIs(t, err, ErrKey)
		})
	}
	pub2, key2, err := GenerateKey(nil)
	require.NoError(t, err)
	b, err := MarshalPrivateKey(key2)
	require.NoError(t, err)
	k, err := ParsePrivateKey(b)
	require.NoError(t, err)
	require.Equal(t, pub2, k.Public())
}
