// Package odatest is a test public key infrastructure for EMV offline data
// authentication: real RSA keys, certificates and signatures in the formats
// of EMV Book 2, signed with the private keys. The software card
// personalises itself with it, `faregate keys emv` writes its keys, and the
// oda tests build every fault with it.
//
// Nothing here is for production: keys live in memory and in plain PEM
// files, and every CA key this package describes is marked test.
//
// The certificate builders take fault-injection fields (Header, Format,
// HashAlg, PKAlg, Trailer, KeyLength, ExponentLength, CorruptHash). Their
// zero value means "correct"; a fault in a hashed field is hashed as
// written, so the hash still matches and a verifier reports the fault
// itself rather than a hash mismatch.
package odatest

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
)

// Book 2 format bytes and indicators.
const (
	Header         = 0x6A
	Trailer        = 0xBC
	FormatIssuer   = 0x02 // issuer public key certificate
	FormatSSAD     = 0x03 // Signed Static Application Data (SDA)
	FormatICC      = 0x04 // ICC public key certificate
	FormatSDAD     = 0x05 // Signed Dynamic Application Data (DDA, fDDA, CDA)
	FormatVisaFDDA = 0x95 // Signed Dynamic Application Data as some Visa cards sign fDDA
	HashSHA1       = 0x01
	PKAlgRSA       = 0x01
)

// Faults overrides fields of a signed object to build a faulty one. The zero
// value builds a correct object.
type Faults struct {
	Header, Format, HashAlg, PKAlg, Trailer byte // non-zero replaces the field
	// KeyLength and ExponentLength, non-zero, replace the certified key
	// length and exponent length bytes of a certificate.
	KeyLength, ExponentLength int
	// CorruptHash flips a bit of the hash after computing it.
	CorruptHash bool
}

func (f Faults) or(field *byte, v byte) {
	if v != 0 {
		*field = v
	}
}

func merge(fs []Faults) Faults {
	var m Faults
	for _, f := range fs {
		m.or(&m.Header, f.Header)
		m.or(&m.Format, f.Format)
		m.or(&m.HashAlg, f.HashAlg)
		m.or(&m.PKAlg, f.PKAlg)
		m.or(&m.Trailer, f.Trailer)
		if f.KeyLength != 0 {
			m.KeyLength = f.KeyLength
		}
		if f.ExponentLength != 0 {
			m.ExponentLength = f.ExponentLength
		}
		m.CorruptHash = m.CorruptHash || f.CorruptHash
	}
	return m
}

// GenerateKey generates an RSA key for EMV: a modulus of bits bits (a
// multiple of 8, 512 to 1984) and public exponent 3 or 65537. Primes are
// drawn from random, so a deterministic reader gives a deterministic key
// (unlike crypto/rsa.GenerateKey, which ignores its reader since Go 1.26
// and fixes the exponent at 65537).
func GenerateKey(random io.Reader, bits, exponent int) (*rsa.PrivateKey, error) {
	if bits%8 != 0 || bits < 512 || bits > 1984 {
		return nil, fmt.Errorf("odatest: key of %d bits: want a multiple of 8 from 512 to 1984", bits)
	}
	if exponent != 3 && exponent != 65537 {
		return nil, fmt.Errorf("odatest: exponent %d: want 3 or 65537", exponent)
	}
	e := big.NewInt(int64(exponent))
	one := big.NewInt(1)
	pBits := (bits + 1) / 2
	for {
		p, err := prime(random, pBits, e)
		if err != nil {
			return nil, err
		}
		q, err := prime(random, bits-pBits, e)
		if err != nil {
			return nil, err
		}
		if p.Cmp(q) == 0 {
			continue
		}
		if p.Cmp(q) < 0 {
			p, q = q, p
		}
		n := new(big.Int).Mul(p, q)
		if n.BitLen() != bits {
			continue
		}
		p1 := new(big.Int).Sub(p, one)
		q1 := new(big.Int).Sub(q, one)
		lambda := new(big.Int).Mul(p1, q1)
		lambda.Quo(lambda, new(big.Int).GCD(nil, nil, p1, q1))
		d := new(big.Int).ModInverse(e, lambda)
		if d == nil {
			continue
		}
		key := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: exponent}, D: d, Primes: []*big.Int{p, q}}
		key.Precompute()
		return key, nil
	}
}

// prime draws a prime of exactly bits bits with its two top bits set (so
// two of them multiply to a modulus of the full length) and p-1 coprime
// with e.
func prime(random io.Reader, bits int, e *big.Int) (*big.Int, error) {
	buf := make([]byte, (bits+7)/8)
	one := big.NewInt(1)
	for {
		if _, err := io.ReadFull(random, buf); err != nil {
			return nil, fmt.Errorf("odatest: read random: %w", err)
		}
		if excess := len(buf)*8 - bits; excess > 0 {
			buf[0] &= 0xFF >> excess
		}
		p := new(big.Int).SetBytes(buf)
		p.SetBit(p, bits-1, 1)
		p.SetBit(p, bits-2, 1)
		p.SetBit(p, 0, 1)
		pm1 := new(big.Int)
		for delta := 0; delta < 1<<16; delta += 2 {
			if p.BitLen() != bits {
				break
			}
			pm1.Sub(p, one)
			if new(big.Int).GCD(nil, nil, pm1, e).Cmp(one) == 0 && p.ProbablyPrime(32) {
				return p, nil
			}
			p.Add(p, big.NewInt(2))
		}
	}
}

// Sign applies the RSA private operation to recovered data of exactly the
// modulus length whose value is below the modulus: the signature of EMV
// Book 2, A2.1 (no padding scheme). It is the primitive the other builders
// use; call it to sign hand-made recovered data.
func Sign(key *rsa.PrivateKey, recovered []byte) ([]byte, error) {
	size := key.Size()
	if len(recovered) != size {
		return nil, fmt.Errorf("odatest: recovered data of %d bytes for a %d-byte key", len(recovered), size)
	}
	m := new(big.Int).SetBytes(recovered)
	if m.Cmp(key.N) >= 0 {
		return nil, errors.New("odatest: recovered data is not below the modulus")
	}
	var s *big.Int
	if len(key.Primes) == 2 && key.Precomputed.Dp != nil {
		// CRT: four times faster than m^d mod n.
		p, q := key.Primes[0], key.Primes[1]
		m1 := new(big.Int).Exp(m, key.Precomputed.Dp, p)
		m2 := new(big.Int).Exp(m, key.Precomputed.Dq, q)
		h := m1.Sub(m1, m2)
		h.Mul(h, key.Precomputed.Qinv)
		h.Mod(h, p)
		s = h.Mul(h, q)
		s.Add(s, m2)
	} else {
		s = new(big.Int).Exp(m, key.D, key.N)
	}
	return s.FillBytes(make([]byte, size)), nil
}

// Recover applies the RSA public operation: the inverse of Sign.
func Recover(pub *rsa.PublicKey, sig []byte) []byte {
	c := new(big.Int).SetBytes(sig)
	return c.Exp(c, big.NewInt(int64(pub.E)), pub.N).FillBytes(make([]byte, (pub.N.BitLen()+7)/8))
}

// ExponentBytes encodes a public exponent as EMV stores it: 03 or 010001.
func ExponentBytes(e int) []byte {
	return new(big.Int).SetInt64(int64(e)).Bytes()
}

// finish fills the hash (SHA-1 of rec[1:len-21] followed by extra) and
// trailer of rec, applies faults, and signs.
func finish(key *rsa.PrivateKey, rec []byte, f Faults, extra ...[]byte) ([]byte, error) {
	n := len(rec)
	h := sha1.New()
	h.Write(rec[1 : n-21])
	for _, e := range extra {
		h.Write(e)
	}
	h.Sum(rec[n-21 : n-21])
	if f.CorruptHash {
		rec[n-2] ^= 0x01
	}
	rec[n-1] = Trailer
	f.or(&rec[n-1], f.Trailer)
	rec[0] = Header
	f.or(&rec[0], f.Header)
	return Sign(key, rec)
}

// IssuerTemplate describes an issuer public key certificate (EMV Book 2,
// Table 6), with optional faults.
type IssuerTemplate struct {
	// IssuerID is the 3 to 8 leftmost PAN digits ("476173"); it is padded
	// with F to 4 bytes. Hex digits A–F are written as given (faults).
	IssuerID string
	Expiry   string // MMYY
	Serial   []byte // 3 bytes; nil means 000001
	Key      *rsa.PublicKey

	Faults // the fields a faulty certificate gets wrong
}

// IssuerCertificate builds the issuer public key certificate (90) signed by
// the CA key, and the issuer public key remainder (92), nil when the key
// fits in the certificate.
func IssuerCertificate(ca *rsa.PrivateKey, t IssuerTemplate) (cert, remainder []byte, err error) {
	if t.Key == nil {
		return nil, nil, errors.New("odatest: issuer template without key")
	}
	id, err := packDigits(t.IssuerID, 4)
	if err != nil {
		return nil, nil, fmt.Errorf("odatest: issuer id: %w", err)
	}
	expiry, serial, err := expirySerial(t.Expiry, t.Serial)
	if err != nil {
		return nil, nil, err
	}
	return certificate(ca, "CA", "an issuer", FormatIssuer, id, expiry, serial, t.Key, t.Faults)
}

// ICCTemplate describes an ICC public key certificate (EMV Book 2, Table
// 14), with optional faults.
type ICCTemplate struct {
	// PAN is the application PAN as digits (12 to 19); it is padded with
	// F to 10 bytes. Hex digits A–F are written as given (faults).
	PAN    string
	Expiry string // MMYY
	Serial []byte // 3 bytes; nil means 000001
	Key    *rsa.PublicKey

	Faults // the fields a faulty certificate gets wrong
}

// ICCCertificate builds the ICC public key certificate (9F46) signed by the
// issuer key over the static data to be authenticated, and the ICC public
// key remainder (9F48), nil when the key fits in the certificate.
// issuerModulusLen is the issuer key's modulus length in bytes; 0 takes it
// from the key.
func ICCCertificate(issuer *rsa.PrivateKey, issuerModulusLen int, t ICCTemplate, staticData []byte) (cert, remainder []byte, err error) {
	if t.Key == nil {
		return nil, nil, errors.New("odatest: ICC template without key")
	}
	ni := issuer.Size()
	if issuerModulusLen != 0 && issuerModulusLen != ni {
		return nil, nil, fmt.Errorf("odatest: issuer modulus length %d, key has %d", issuerModulusLen, ni)
	}
	pan, err := packDigits(t.PAN, 10)
	if err != nil {
		return nil, nil, fmt.Errorf("odatest: PAN: %w", err)
	}
	expiry, serial, err := expirySerial(t.Expiry, t.Serial)
	if err != nil {
		return nil, nil, err
	}
	return certificate(issuer, "issuer", "an ICC", FormatICC, pan, expiry, serial, t.Key, t.Faults, staticData)
}

// certificate builds a public key certificate of EMV Book 2: Tables 13
// (issuer) and 14 (ICC) share one layout but for the identifier (the
// issuer identifier, 4 bytes, or the PAN, 10) — format, identifier,
// expiry, serial, hash and key algorithm indicators, key and exponent
// lengths, the key's leading part — signed by signer over the remainder,
// the exponent and extra (the ICC's static data). It returns the
// certificate and the key's remainder (nil when the key fits).
func certificate(signer *rsa.PrivateKey, signerName, certName string, format byte, ident, expiry, serial []byte,
	key *rsa.PublicKey, f Faults, extra ...[]byte) (cert, remainder []byte, err error) {
	mod := key.N.Bytes()
	exp := ExponentBytes(key.E)
	h := 2 + len(ident) + len(expiry) + len(serial) // the hash algorithm indicator
	n := signer.Size()
	field := n - (h + 4) - 20 - 1 // the key field ends before the SHA-1 hash and the trailer
	if field < 1 {
		return nil, nil, fmt.Errorf("odatest: %s key too short for %s certificate", signerName, certName)
	}
	rec := make([]byte, n)
	rec[1] = format
	copy(rec[2:], ident)
	copy(rec[2+len(ident):], expiry)
	copy(rec[2+len(ident)+len(expiry):], serial)
	rec[h] = HashSHA1
	rec[h+1] = PKAlgRSA
	rec[h+2] = byte(len(mod))
	rec[h+3] = byte(len(exp))
	applyCertFaults(f, rec, 1, h, h+1, h+2, h+3)
	remainder = splitKey(rec[h+4:h+4+field], mod)
	cert, err = finish(signer, rec, f, append([][]byte{remainder, exp}, extra...)...)
	return cert, remainder, err
}

func applyCertFaults(f Faults, rec []byte, format, hashAlg, pkAlg, keyLen, expLen int) {
	f.or(&rec[format], f.Format)
	f.or(&rec[hashAlg], f.HashAlg)
	f.or(&rec[pkAlg], f.PKAlg)
	if f.KeyLength != 0 {
		rec[keyLen] = byte(f.KeyLength)
	}
	if f.ExponentLength != 0 {
		rec[expLen] = byte(f.ExponentLength)
	}
}

// splitKey writes the modulus into the certificate's key field, padded with
// BB, and returns what does not fit (the remainder), or nil.
func splitKey(field, mod []byte) []byte {
	if len(mod) <= len(field) {
		copy(field, mod)
		for i := len(mod); i < len(field); i++ {
			field[i] = 0xBB
		}
		return nil
	}
	copy(field, mod)
	return bytes.Clone(mod[len(field):])
}

// SignStaticData builds the Signed Static Application Data (93, EMV Book 2
// Table 7) over the static data to be authenticated, with the Data
// Authentication Code dac.
func SignStaticData(issuer *rsa.PrivateKey, dac [2]byte, staticData []byte, faults ...Faults) ([]byte, error) {
	ni := issuer.Size()
	f := merge(faults)
	rec := make([]byte, ni)
	rec[1] = FormatSSAD
	rec[2] = HashSHA1
	f.or(&rec[1], f.Format)
	f.or(&rec[2], f.HashAlg)
	copy(rec[3:5], dac[:])
	for i := 5; i < ni-21; i++ {
		rec[i] = 0xBB
	}
	return finish(issuer, rec, f, staticData)
}

// SignDynamicData builds Signed Dynamic Application Data (9F4B, EMV Book 2
// Table 17): format 05 (DDA, CDA, fDDA) or 95 (fDDA as some Visa cards
// sign it), over the ICC Dynamic Data (starting with the ICC Dynamic Number
// length, see DynamicNumber) and the terminal dynamic data (DDOL data for
// DDA; see FDDATerminalData for fDDA; the unpredictable number for CDA).
func SignDynamicData(icc *rsa.PrivateKey, format byte, iccDynamicData, terminalData []byte, faults ...Faults) ([]byte, error) {
	nic := icc.Size()
	if len(iccDynamicData) > nic-25 {
		return nil, fmt.Errorf("odatest: %d bytes of ICC dynamic data do not fit a %d-byte key", len(iccDynamicData), nic)
	}
	f := merge(faults)
	rec := make([]byte, nic)
	rec[1] = format
	rec[2] = HashSHA1
	f.or(&rec[1], f.Format)
	f.or(&rec[2], f.HashAlg)
	rec[3] = byte(len(iccDynamicData))
	copy(rec[4:], iccDynamicData)
	for i := 4 + len(iccDynamicData); i < nic-21; i++ {
		rec[i] = 0xBB
	}
	return finish(icc, rec, f, terminalData)
}

// DynamicNumber returns the ICC Dynamic Data of DDA and fDDA: the ICC
// Dynamic Number (2 to 8 bytes) preceded by its length.
func DynamicNumber(idn []byte) []byte {
	return append([]byte{byte(len(idn))}, idn...)
}

// FDDATerminalData is the terminal data an fDDA signature covers (EMV
// Contactless Book C-3): unpredictable number (9F37), amount authorised
// (9F02), transaction currency code (5F2A) and card authentication related
// data (9F69) for fDDA version 01; pass nil amount, currency and cardAuth
// for version 00, which covers the unpredictable number alone.
func FDDATerminalData(un, amount, currency, cardAuth []byte) []byte {
	return bytes.Join([][]byte{un, amount, currency, cardAuth}, nil)
}

// CDAData is the ICC Dynamic Data of a CDA signature (EMV Book 2, Table 19).
type CDAData struct {
	DynamicNumber       []byte   // ICC Dynamic Number, 2 to 8 bytes
	CID                 byte     // Cryptogram Information Data (9F27)
	Cryptogram          [8]byte  // Application Cryptogram (9F26)
	TransactionDataHash [20]byte // see TransactionDataHash
}

// ICCDynamicData encodes d as signed.
func (d CDAData) ICCDynamicData() []byte {
	b := DynamicNumber(d.DynamicNumber)
	b = append(b, d.CID)
	b = append(b, d.Cryptogram[:]...)
	return append(b, d.TransactionDataHash[:]...)
}

// SignCDA builds the CDA Signed Dynamic Application Data (9F4B) over the
// terminal's unpredictable number (9F37).
func SignCDA(icc *rsa.PrivateKey, d CDAData, unpredictableNumber []byte, faults ...Faults) ([]byte, error) {
	return SignDynamicData(icc, FormatSDAD, d.ICCDynamicData(), unpredictableNumber, faults...)
}

// TransactionDataHash is the CDA Transaction Data Hash Code (EMV Book 2,
// 6.6.1): SHA-1 of the PDOL data, the CDOL1 data and the data objects the
// GENERATE AC response returns, TLV-encoded in the order sent, without the
// Signed Dynamic Application Data (9F4B).
func TransactionDataHash(pdolData, cdol1Data, responseTLVs []byte) [20]byte {
	return sha1.Sum(bytes.Join([][]byte{pdolData, cdol1Data, responseTLVs}, nil))
}

// packDigits packs digits (0–9, or A–F to build faults) into n bytes,
// padded to the right with F.
func packDigits(s string, n int) ([]byte, error) {
	s = strings.ToUpper(s)
	if len(s) > 2*n {
		return nil, fmt.Errorf("%d digits do not fit %d bytes", len(s), n)
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789ABCDEF", c) {
			return nil, fmt.Errorf("%q is not a digit", c)
		}
	}
	s += strings.Repeat("F", 2*n-len(s))
	out := make([]byte, n)
	for i := range out {
		out[i] = nibble(s[2*i])<<4 | nibble(s[2*i+1])
	}
	return out, nil
}

func nibble(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'A' + 10
}

func expirySerial(mmyy string, serial []byte) ([]byte, []byte, error) {
	if len(mmyy) != 4 {
		return nil, nil, fmt.Errorf("odatest: expiry %q is not MMYY", mmyy)
	}
	exp, err := packDigits(mmyy, 2)
	if err != nil {
		return nil, nil, fmt.Errorf("odatest: expiry: %w", err)
	}
	if serial == nil {
		serial = []byte{0, 0, 1}
	}
	if len(serial) != 3 {
		return nil, nil, fmt.Errorf("odatest: serial of %d bytes, want 3", len(serial))
	}
	return exp, serial, nil
}
