package odatest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGenerateKey(t *testing.T) {
	for _, tt := range []struct{ bits, e int }{{512, 3}, {768, 65537}, {1016, 3}, {1152, 3}} {
		k, err := GenerateKey(rand.Reader, tt.bits, tt.e)
		require.NoError(t, err)
		require.Equal(t, tt.bits, k.N.BitLen())
		require.Equal(t, tt.e, k.E)
		require.NoError(t, k.Validate())
	}
	for _, tt := range []struct{ bits, e int }{{1000 + 1, 3}, {2048, 3}, {256, 3}, {1024, 5}} {
		_, err := GenerateKey(rand.Reader, tt.bits, tt.e)
		require.Error(t, err)
	}
}

func TestGenerateKeyDeterministic(t *testing.T) {
	k1, err := GenerateKey(mrand.NewChaCha8([32]byte{1}), 768, 3)
	require.NoError(t, err)
	k2, err := GenerateKey(mrand.NewChaCha8([32]byte{1}), 768, 3)
	require.NoError(t, err)
	require.Equal(t, 0, k1.N.Cmp(k2.N))
}

func TestSignRecover(t *testing.T) {
	k, err := GenerateKey(rand.Reader, 1024, 3)
	require.NoError(t, err)
	m := bytes.Repeat([]byte{0x6A}, 128)
	s, err := Sign(k, m)
	require.NoError(t, err)
	require.Equal(t, m, Recover(&k.PublicKey, s))
	_, err = Sign(k, m[1:])
	require.Error(t, err)
	_, err = Sign(k, bytes.Repeat([]byte{0xFF}, 128))
	require.Error(t, err, "not below the modulus")
}

func TestIssuerCertificateLayout(t *testing.T) {
	ca, err := GenerateKey(rand.Reader, 1024, 3)
	require.NoError(t, err)
	for _, bits := range []int{768, 1024} { // fits; needs a remainder
		iss, err := GenerateKey(rand.Reader, bits, 65537)
		require.NoError(t, err)
		cert, rem, err := IssuerCertificate(ca, IssuerTemplate{IssuerID: "476", Expiry: "1230", Key: &iss.PublicKey})
		require.NoError(t, err)
		rec := Recover(&ca.PublicKey, cert)
		require.Equal(t, byte(Header), rec[0])
		require.Equal(t, byte(FormatIssuer), rec[1])
		require.Equal(t, []byte{0x47, 0x6F, 0xFF, 0xFF}, rec[2:6])
		require.Equal(t, []byte{0x12, 0x30}, rec[6:8])
		require.Equal(t, []byte{0, 0, 1}, rec[8:11])
		require.Equal(t, byte(bits/8), rec[13])
		require.Equal(t, byte(3), rec[14])
		require.Equal(t, byte(Trailer), rec[127])
		mod := append(append([]byte{}, rec[15:15+min(bits/8, 128-36)]...), rem...)
		require.Equal(t, iss.N.Bytes(), mod)
		if bits/8 > 128-36 {
			require.Len(t, rem, bits/8-(128-36))
		} else {
			require.Nil(t, rem)
			require.Equal(t, byte(0xBB), rec[15+bits/8])
		}
		h := sha1.New()
		h.Write(rec[1 : 128-21])
		h.Write(rem)
		h.Write([]byte{1, 0, 1})
		require.Equal(t, h.Sum(nil), rec[128-21:127])
	}
}

func TestFaults(t *testing.T) {
	ca, err := GenerateKey(rand.Reader, 1024, 3)
	require.NoError(t, err)
	iss, err := GenerateKey(rand.Reader, 768, 3)
	require.NoError(t, err)
	cert, _, err := IssuerCertificate(ca, IssuerTemplate{IssuerID: "476173", Expiry: "1230", Key: &iss.PublicKey,
		Faults: Faults{Header: 0x6B, Format: 0x12, HashAlg: 2, PKAlg: 3, Trailer: 0xBD, KeyLength: 7, ExponentLength: 9, CorruptHash: true}})
	require.NoError(t, err)
	rec := Recover(&ca.PublicKey, cert)
	require.Equal(t, []byte{0x6B, 0x12}, rec[:2])
	require.Equal(t, []byte{2, 3, 7, 9}, rec[11:15])
	require.Equal(t, byte(0xBD), rec[127])
	h := sha1.New()
	h.Write(rec[1 : 128-21])
	h.Write([]byte{3})
	require.NotEqual(t, h.Sum(nil), rec[128-21:127])
}

func TestKeyFiles(t *testing.T) {
	k, err := GenerateKey(rand.Reader, 768, 3)
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "icc.pem")
	require.NoError(t, WriteKeyFile(path, k))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.Error(t, WriteKeyFile(path, k), "no overwrite")
	got, err := ReadKeyFile(path)
	require.NoError(t, err)
	require.True(t, k.Equal(got))
	p8, err := MarshalPKCS8PEM(k)
	require.NoError(t, err)
	got, err = ParseKeyPEM(p8)
	require.NoError(t, err)
	require.True(t, k.Equal(got))
	_, err = ParseKeyPEM([]byte("nothing"))
	require.Error(t, err)
}

func TestPackDigits(t *testing.T) {
	b, err := packDigits("374245455400001", 10) // 15-digit Amex PAN
	require.NoError(t, err)
	require.Equal(t, "374245455400001FFFFF", Hex(b))
	_, err = packDigits("12345678901234567890123", 10)
	require.Error(t, err)
	_, err = packDigits("12x", 4)
	require.Error(t, err)
	require.Equal(t, big.NewInt(65537).Bytes(), ExponentBytes(65537))
}
