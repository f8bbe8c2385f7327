package oda_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/emv/tlv"
	"github.com/faregate/faregate/oda"
	"github.com/faregate/faregate/oda/odatest"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite generated keys, vectors and golden outputs under testdata")

const keyDir = "../testdata/oda/keys"

// testKeys are the fixed keys of the generated vectors (testdata/oda/keys).
type testKeys struct {
	ca          *rsa.PrivateKey // 1408 bits, e=3
	issuer      *rsa.PrivateKey // 1152 bits, e=3: needs a 4-byte remainder under the CA
	icc         *rsa.PrivateKey // 1024 bits, e=3: needs a 26-byte remainder under the issuer
	issuerSmall *rsa.PrivateKey // 896 bits, e=3: fits in the issuer certificate
	icc65537    *rsa.PrivateKey // 768 bits, e=65537: fits in the ICC certificate
}

var (
	keysOnce sync.Once
	keys     testKeys
	keysErr  error
)

func loadKeys(t testing.TB) testKeys {
	t.Helper()
	keysOnce.Do(func() {
		for _, k := range []struct {
			name string
			bits int
			e    int
			dst  **rsa.PrivateKey
		}{
			{"ca.pem", 1408, 3, &keys.ca},
			{"issuer.pem", 1152, 3, &keys.issuer},
			{"icc.pem", 1024, 3, &keys.icc},
			{"issuer-896.pem", 896, 3, &keys.issuerSmall},
			{"icc-768-65537.pem", 768, 65537, &keys.icc65537},
		} {
			path := filepath.Join(keyDir, k.name)
			key, err := odatest.ReadKeyFile(path)
			if err != nil && *update {
				if key, err = odatest.GenerateKey(rand.Reader, k.bits, k.e); err == nil {
					_ = os.MkdirAll(keyDir, 0o755)
					err = odatest.WriteKeyFile(path, key)
				}
			}
			if err != nil {
				keysErr = err
				return
			}
			*k.dst = key
		}
	})
	require.NoError(t, keysErr, "keys under %s (run go test ./oda -update to create them)", keyDir)
	return keys
}

var (
	testRID = []byte{0xA0, 0x00, 0x00, 0x00, 0x03}
	txDate  = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
)

const testIndex = 0x92

func caKey(t testing.TB, k *rsa.PrivateKey, test bool) oda.CAKey {
	t.Helper()
	return oda.CAKey{RID: [5]byte(testRID), Index: testIndex, Modulus: k.N.Bytes(), Exponent: odatest.ExponentBytes(k.E), Test: test}
}

func store(t testing.TB, keys ...oda.CAKey) *oda.KeyStore {
	t.Helper()
	s, err := oda.NewKeyStore(keys...)
	require.NoError(t, err)
	return s
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

func enc(t testing.TB, tag string, value []byte) []byte {
	t.Helper()
	b, err := tlv.Encode(tlv.TLV{Tag: tag, Value: value})
	require.NoError(t, err)
	return b
}

// card is a generated card and one transaction with it, before signing.
// Tests change its fields (templates, faults, data) and call input.
type card struct {
	t      testing.TB
	method tapdata.Method
	// asMethod, when set, is the method the input asks for (auto).
	asMethod tapdata.Method
	ca       *rsa.PrivateKey
	issuer   *rsa.PrivateKey
	icc      *rsa.PrivateKey
	issT     odatest.IssuerTemplate
	iccT     odatest.ICCTemplate
	pan      []byte // 5A

	records    []tapdata.Record
	afl        []byte
	aip        []byte
	sdaTagList []byte // 9F4A; nil: absent
	// signedStatic, when set, is what the issuer signs instead of the
	// static data a terminal builds.
	signedStatic []byte

	dac        [2]byte
	ssadFaults odatest.Faults
	sdadFaults odatest.Faults
	sdadFormat byte
	idn        []byte
	ddol       []byte // DDA terminal data
	// fDDA terminal data; cardAuth nil means fDDA version 00.
	un, amount, currency, cardAuth []byte
	// CDA
	cid                   byte
	cryptogram            [8]byte
	pdolData, cdol1Data   []byte
	before, after         []byte // response TLVs before and after 9F4B
	tdhcOver              []byte // when set, the hash code is computed over this
	cdaDynamic            []byte // when set, signed as the ICC dynamic data
	date                  time.Time
	extra                 map[string][]byte // added to (or, nil value, removed from) Data
	staticVerbatim        bool
	genACAsTemplateOrNone int // 0: template 77, 1: content only
}

func newCard(t testing.TB, method tapdata.Method) *card {
	t.Helper()
	k := loadKeys(t)
	pan := "4761739001010010"
	c := &card{
		t: t, method: method, ca: k.ca, issuer: k.issuer, icc: k.icc,
		issT:       odatest.IssuerTemplate{IssuerID: "476173", Expiry: "1230", Serial: []byte{0x12, 0x34, 0x56}, Key: &k.issuer.PublicKey},
		iccT:       odatest.ICCTemplate{PAN: pan, Expiry: "1230", Serial: []byte{0, 0, 7}, Key: &k.icc.PublicKey},
		pan:        unhex(t, pan),
		aip:        []byte{0x39, 0x00}, // SDA, DDA, CDA
		sdaTagList: []byte{0x82},
		dac:        [2]byte{0xDA, 0xC0},
		sdadFormat: odatest.FormatSDAD,
		idn:        []byte{0x11, 0x22, 0x33, 0x44},
		ddol:       []byte{0xCA, 0xFE, 0xBA, 0xBE},
		un:         []byte{0x01, 0x02, 0x03, 0x04},
		amount:     []byte{0, 0, 0, 0, 0x02, 0x90},
		currency:   []byte{0x09, 0x78},
		cardAuth:   []byte{0x01, 0x11, 0x22, 0x33, 0x44, 0x80, 0x00},
		cid:        0x40,
		cryptogram: [8]byte{1, 2, 3, 4, 5, 6, 7, 8},
		pdolData:   []byte{0x36, 0x00, 0x40, 0x00, 0, 0, 0, 0, 0x02, 0x90, 0x01, 0x02, 0x03, 0x04},
		cdol1Data:  []byte{0, 0, 0, 0, 0x02, 0x90, 0x09, 0x78, 0x26, 0x11, 0x23, 0x01, 0x02, 0x03, 0x04},
		date:       txDate,
	}
	c.before = append(enc(t, "9F27", []byte{c.cid}), enc(t, "9F36", []byte{0x00, 0x2A})...)
	c.after = enc(t, "9F10", []byte{0x06, 0x01, 0x0A, 0x03, 0xA0, 0x00, 0x00})
	// SFI 1 record 1 is flagged (template 70 value), SFI 2 record 1 is not,
	// SFI 11 record 1 is flagged (whole record).
	rec1 := enc(t, "70", bytes.Join([][]byte{enc(t, "5A", c.pan), enc(t, "5F24", []byte{0x30, 0x12, 0x31}), enc(t, "9F4A", []byte{0x82})}, nil))
	rec2 := enc(t, "70", enc(t, "9F08", []byte{0x00, 0x02}))
	rec11 := []byte{0xDF, 0x01, 0x02, 0xAB, 0xCD}
	c.records = []tapdata.Record{{SFI: 1, Number: 1, Data: rec1}, {SFI: 2, Number: 1, Data: rec2}, {SFI: 11, Number: 1, Data: rec11}}
	c.afl = []byte{0x08, 1, 1, 1, 0x10, 1, 1, 0, 0x58, 1, 1, 1}
	return c
}

// static is the static data a terminal builds from c's records.
func (c *card) static() []byte {
	_, val, _, err := tlv.Split(c.records[0].Data)
	require.NoError(c.t, err)
	s := append(bytes.Clone(val), c.records[2].Data...)
	if bytes.Equal(c.sdaTagList, []byte{0x82}) {
		s = append(s, c.aip...)
	}
	return s
}

// input signs everything and returns the Input of the transaction.
func (c *card) input() *oda.Input {
	t := c.t
	t.Helper()
	static := c.signedStatic
	if static == nil {
		static = c.static()
	}
	issCert, issRem, err := odatest.IssuerCertificate(c.ca, c.issT)
	require.NoError(t, err)
	data := map[string][]byte{
		"8F":   {testIndex},
		"90":   issCert,
		"9F32": odatest.ExponentBytes(c.issT.Key.E),
		"5A":   c.pan,
		"82":   c.aip,
		"94":   c.afl,
	}
	if issRem != nil {
		data["92"] = issRem
	}
	if c.sdaTagList != nil {
		data["9F4A"] = c.sdaTagList
	}
	in := &oda.Input{RID: testRID, Method: c.method, Date: c.date, Data: data, Records: c.records}
	if c.asMethod != "" {
		in.Method = c.asMethod
	}
	if c.staticVerbatim {
		in.StaticData, in.StaticDataSet = static, true
	}
	if c.method == tapdata.MethodSDA {
		data["93"], err = odatest.SignStaticData(c.issuer, c.dac, static, c.ssadFaults)
		require.NoError(t, err)
	} else {
		iccCert, iccRem, err := odatest.ICCCertificate(c.issuer, 0, c.iccT, static)
		require.NoError(t, err)
		data["9F46"] = iccCert
		data["9F47"] = odatest.ExponentBytes(c.iccT.Key.E)
		if iccRem != nil {
			data["9F48"] = iccRem
		}
	}
	switch c.method {
	case tapdata.MethodDDA:
		data["9F4B"], err = odatest.SignDynamicData(c.icc, c.sdadFormat, odatest.DynamicNumber(c.idn), c.ddol, c.sdadFaults)
		require.NoError(t, err)
		in.DDOLData = c.ddol
	case tapdata.MethodFDDA:
		var amount, currency []byte
		if c.cardAuth != nil {
			amount, currency = c.amount, c.currency
			data["9F69"] = c.cardAuth
		}
		data["9F37"], data["9F02"], data["5F2A"] = c.un, c.amount, c.currency
		data["9F4B"], err = odatest.SignDynamicData(c.icc, c.sdadFormat, odatest.DynamicNumber(c.idn),
			odatest.FDDATerminalData(c.un, amount, currency, c.cardAuth), c.sdadFaults)
		require.NoError(t, err)
	case tapdata.MethodCDA:
		data["9F37"] = c.un
		over := c.tdhcOver
		if over == nil {
			over = append(bytes.Clone(c.before), c.after...)
		}
		d := odatest.CDAData{DynamicNumber: c.idn, CID: c.cid, Cryptogram: c.cryptogram,
			TransactionDataHash: odatest.TransactionDataHash(c.pdolData, c.cdol1Data, over)}
		dyn := d.ICCDynamicData()
		if c.cdaDynamic != nil {
			dyn = c.cdaDynamic
		}
		sdad, err := odatest.SignDynamicData(c.icc, c.sdadFormat, dyn, c.un, c.sdadFaults)
		require.NoError(t, err)
		content := bytes.Join([][]byte{c.before, enc(t, "9F4B", sdad), c.after}, nil)
		in.GenACResponse = enc(t, "77", content)
		if c.genACAsTemplateOrNone == 1 {
			in.GenACResponse = content
		}
		in.PDOLData, in.CDOL1Data = c.pdolData, c.cdol1Data
	}
	for tag, v := range c.extra {
		if v == nil {
			delete(data, tag)
		} else {
			data[tag] = v
		}
	}
	return in
}

func (c *card) store(test bool) *oda.KeyStore {
	return store(c.t, caKey(c.t, c.ca, test))
}
