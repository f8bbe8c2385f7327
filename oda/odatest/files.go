package odatest

import (
	"context"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/faregate/faregate/internal/atomicfile"
	"github.com/faregate/faregate/oda"
)

// Files of a hierarchy directory (WriteFiles, LoadHierarchy).
const (
	CAKeyFile        = "ca.pem"         // CA private key, PKCS #1 PEM, 0600
	IssuerKeyFile    = "issuer.pem"     // issuer private key, PKCS #1 PEM, 0600
	ICCKeyFile       = "icc.pem"        // ICC private key, PKCS #1 PEM, 0600
	CAListFile       = "capk.json"      // CA key list with the CA public key, "test": true
	IssuerCertFile   = "issuer.json"    // {"8F","90","92","9F32"}: the issuer certificate data objects
	HierarchyCfgFile = "hierarchy.json" // the certificate parameters (hierarchyJSON)
)

// hierarchyJSON records what the certificates say besides the keys.
type hierarchyJSON struct {
	RID          string `json:"rid"`
	Index        string `json:"index"`
	CAExpiry     string `json:"ca_expiry,omitempty"`
	IssuerID     string `json:"issuer_id"`
	IssuerExpiry string `json:"issuer_expiry"`
	IssuerSerial string `json:"issuer_serial"`
	PAN          string `json:"pan"`
	ICCExpiry    string `json:"icc_expiry"`
	ICCSerial    string `json:"icc_serial"`
}

func serialOrDefault(s []byte) []byte {
	if s == nil {
		return []byte{0, 0, 1}
	}
	return s
}

// WriteFiles writes the hierarchy to dir (created 0700 when missing): the
// three private keys (0600), the CA key list, the issuer certificate data
// objects and the certificate parameters. Existing files are refused unless
// overwrite. It returns the paths written.
func (h *Hierarchy) WriteFiles(dir string, overwrite bool) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("odatest: %w", err)
	}
	ca, err := h.CAKey()
	if err != nil {
		return nil, err
	}
	list, err := oda.MarshalKeyList([]oda.CAKey{ca})
	if err != nil {
		return nil, err
	}
	cert, rem, err := h.IssuerCertificate()
	if err != nil {
		return nil, err
	}
	objs := map[string]string{"8F": Hex([]byte{h.Index}), "90": Hex(cert), "9F32": Hex(ExponentBytes(h.Issuer.E))}
	if rem != nil {
		objs["92"] = Hex(rem)
	}
	issuer, err := json.MarshalIndent(objs, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("odatest: %w", err)
	}
	cfg, err := json.MarshalIndent(hierarchyJSON{
		RID: Hex(h.RID[:]), Index: Hex([]byte{h.Index}), CAExpiry: h.CAExpiry,
		IssuerID: h.IssuerTemplate.IssuerID, IssuerExpiry: h.IssuerTemplate.Expiry, IssuerSerial: Hex(serialOrDefault(h.IssuerTemplate.Serial)),
		PAN: h.ICCTemplate.PAN, ICCExpiry: h.ICCTemplate.Expiry, ICCSerial: Hex(serialOrDefault(h.ICCTemplate.Serial)),
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("odatest: %w", err)
	}
	files := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{CAKeyFile, MarshalPKCS1PEM(h.CA), 0o600},
		{IssuerKeyFile, MarshalPKCS1PEM(h.Issuer), 0o600},
		{ICCKeyFile, MarshalPKCS1PEM(h.ICC), 0o600},
		{CAListFile, list, 0o644},
		{IssuerCertFile, append(issuer, '\n'), 0o644},
		{HierarchyCfgFile, append(cfg, '\n'), 0o644},
	}
	if !overwrite {
		for _, f := range files {
			if _, err := os.Lstat(filepath.Join(dir, f.name)); err == nil {
				return nil, fmt.Errorf("odatest: %s exists (overwrite not allowed)", filepath.Join(dir, f.name))
			}
		}
	}
	var written []string
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := writeFile(path, f.data, f.perm, overwrite); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}

// writeFile writes one file whole or not at all (internal/atomicfile).
func writeFile(path string, data []byte, perm os.FileMode, overwrite bool) error {
	err := atomicfile.Write(context.Background(), path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, atomicfile.Options{NoReplace: !overwrite})
	if err != nil {
		return fmt.Errorf("odatest: %w", err)
	}
	return nil
}

// LoadHierarchy reads a hierarchy written by WriteFiles.
func LoadHierarchy(dir string) (*Hierarchy, error) {
	var keys [3]*rsa.PrivateKey
	for i, name := range []string{CAKeyFile, IssuerKeyFile, ICCKeyFile} {
		k, err := ReadKeyFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	b, err := os.ReadFile(filepath.Join(dir, HierarchyCfgFile))
	if err != nil {
		return nil, fmt.Errorf("odatest: %w", err)
	}
	var j hierarchyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("odatest: %s: %w", HierarchyCfgFile, err)
	}
	rid, err1 := hex.DecodeString(j.RID)
	idx, err2 := hex.DecodeString(j.Index)
	is, err3 := hex.DecodeString(j.IssuerSerial)
	cs, err4 := hex.DecodeString(j.ICCSerial)
	if err := errors.Join(err1, err2, err3, err4); err != nil || len(idx) != 1 {
		return nil, fmt.Errorf("odatest: %s: bad hex field", HierarchyCfgFile)
	}
	return HierarchyFromKeys(HierarchyConfig{
		RID: rid, Index: idx[0], CAExpiry: j.CAExpiry,
		IssuerID: j.IssuerID, IssuerExpiry: j.IssuerExpiry, IssuerSerial: is,
		PAN: j.PAN, ICCExpiry: j.ICCExpiry, ICCSerial: cs,
	}, keys[0], keys[1], keys[2])
}
