package cardsim

import (
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/faregate/faregate/oda/odatest"
)

func (p *Profile) readKey(rel string) (*rsa.PrivateKey, error) {
	if rel == "" {
		return nil, errors.New("key path missing")
	}
	b, err := fs.ReadFile(p.fsys, p.path(rel))
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	k, err := odatest.ParseKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", rel, err)
	}
	return k, nil
}

func serial(s HexBytes) []byte {
	if len(s) == 0 {
		return nil
	}
	return s
}

func issuerCertificate(ca, issuer *rsa.PrivateKey, k PKI, corrupt bool) (cert, rem []byte, err error) {
	cert, rem, err = odatest.IssuerCertificate(ca, odatest.IssuerTemplate{
		IssuerID: k.IssuerID, Expiry: k.IssuerExpiry, Serial: serial(k.IssuerSerial), Key: &issuer.PublicKey,
	})
	if err == nil && corrupt {
		cert[len(cert)/2] ^= 0x5A
	}
	return cert, rem, err
}

func iccCertificate(issuer, icc *rsa.PrivateKey, k PKI, pan, static []byte, corrupt bool) (cert, rem []byte, err error) {
	digits := strings.TrimRight(strings.ToUpper(hex.EncodeToString(pan)), "F")
	cert, rem, err = odatest.ICCCertificate(issuer, issuer.Size(), odatest.ICCTemplate{
		PAN: digits, Expiry: k.ICCExpiry, Serial: serial(k.ICCSerial), Key: &icc.PublicKey,
	}, static)
	if err == nil && corrupt {
		cert[len(cert)/2] ^= 0x5A
	}
	return cert, rem, err
}

func signStatic(issuer *rsa.PrivateKey, dac HexBytes, static []byte, bad bool) ([]byte, error) {
	var d [2]byte
	copy(d[:], dac)
	return odatest.SignStaticData(issuer, d, static, odatest.Faults{CorruptHash: bad})
}

func signDynamic(icc *rsa.PrivateKey, format byte, iccDynamicData, terminalData []byte, bad bool) ([]byte, error) {
	return odatest.SignDynamicData(icc, format, iccDynamicData, terminalData, odatest.Faults{CorruptHash: bad})
}
