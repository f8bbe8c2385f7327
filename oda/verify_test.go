package oda_test

import (
	"bytes"
	"crypto/rsa"
	"errors"

	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/emv/tlv"
	"github.com/faregate/faregate/oda"
	"github.com/faregate/faregate/oda/odatest"
	"github.com/stretchr/testify/require"
)

type faultCase struct {
	name   string
	method tapdata.Method
	mod    func(c *card)
	post   func(in *oda.Input)
	opts   *oda.Options // nil: test mode
	live   bool         // CA key not marked test
	stage  oda.Stage    // "" when ODA must hold
	reason oda.Reason
	tag    string
}

func runCase(t *testing.T, tc faultCase) (*oda.Result, error) {
	t.Helper()
	c := newCard(t, tc.method)
	if tc.mod != nil {
		tc.mod(c)
	}
	in := c.input()
	if tc.post != nil {
		tc.post(in)
	}
	opts := oda.Options{TestMode: true}
	if tc.opts != nil {
		opts = *tc.opts
	}
	res, err := oda.NewVerifier(c.store(!tc.live), opts).Verify(in)
	require.NotNil(t, res)
	if tc.stage == "" {
		require.NoError(t, err)
		return res, err
	}
	require.Error(t, err)
	var e *oda.Error
	require.True(t, errors.As(err, &e), "error %v is not an *oda.Error", err)
	require.Equal(t, tc.stage, e.Stage, "stage (error: %v)", err)
	require.Equal(t, tc.reason, e.Reason, "reason (error: %v)", err)
	if tc.tag != "" {
		require.Equal(t, tc.tag, e.Tag)
	}
	require.ErrorIs(t, err, oda.ErrVerification)
	// Errors never quote card data: no PAN digits, no hex of any value.
	msg := err.Error()
	require.NotContains(t, msg, "4761739001010010")
	require.NotContains(t, msg, "476173")
	require.True(t, strings.HasPrefix(msg, "oda: "), msg)
	return res, err
}

func set(tag string, v []byte) func(*oda.Input) {
	return func(in *oda.Input) { in.Data[tag] = v }
}

func del(tag string) func(*oda.Input) {
	return func(in *oda.Input) { delete(in.Data, tag) }
}

// pub returns a public key with another exponent, to certify a forbidden
// exponent with a consistent hash.
func pub(k *rsa.PrivateKey, e int) *rsa.PublicKey { return &rsa.PublicKey{N: k.N, E: e} }

func TestVerifyGood(t *testing.T) {
	k := loadKeys(t)
	for _, tc := range []faultCase{
		{name: "SDA", method: tapdata.MethodSDA},
		{name: "DDA", method: tapdata.MethodDDA},
		{name: "fDDA format 05", method: tapdata.MethodFDDA},
		{name: "fDDA format 95", method: tapdata.MethodFDDA, mod: func(c *card) { c.sdadFormat = odatest.FormatVisaFDDA }},
		{name: "fDDA with the ATC as ICC dynamic number", method: tapdata.MethodFDDA, mod: func(c *card) { c.idn = []byte{0x00, 0x2A} }},
		{name: "fDDA version 00 (no 9F69)", method: tapdata.MethodFDDA, mod: func(c *card) { c.cardAuth = nil }},
		{name: "CDA", method: tapdata.MethodCDA},
		{name: "CDA, response given as the content of 77", method: tapdata.MethodCDA, mod: func(c *card) { c.genACAsTemplateOrNone = 1 }},
		{name: "CDA with PDOL data absent", method: tapdata.MethodCDA, mod: func(c *card) { c.pdolData = nil }},
		{name: "CDA with an 8-byte ICC dynamic number", method: tapdata.MethodCDA, mod: func(c *card) { c.idn = bytes.Repeat([]byte{7}, 8) }},
		{name: "issuer key fits in its certificate (no 92)", method: tapdata.MethodDDA, mod: func(c *card) {
			c.issuer = k.issuerSmall
			c.issT.Key = &k.issuerSmall.PublicKey
			c.icc = k.icc65537
			c.iccT.Key = &k.icc65537.PublicKey
		}},
		{name: "ICC key with exponent 65537 fits in its certificate (no 9F48)", method: tapdata.MethodCDA, mod: func(c *card) {
			c.icc = k.icc65537
			c.iccT.Key = &k.icc65537.PublicKey
		}},
		{name: "empty remainder counts as absent", method: tapdata.MethodDDA, mod: func(c *card) {
			c.icc = k.icc65537
			c.iccT.Key = &k.icc65537.PublicKey
		}, post: set("9F48", []byte{})},
		{name: "3-digit issuer identifier", method: tapdata.MethodSDA, mod: func(c *card) { c.issT.IssuerID = "476" }},
		{name: "8-digit issuer identifier", method: tapdata.MethodSDA, mod: func(c *card) { c.issT.IssuerID = "47617390" }},
		{name: "15-digit PAN", method: tapdata.MethodDDA, mod: func(c *card) {
			c.iccT.PAN = "374245455400001"
			c.issT.IssuerID = "374245"
			c.pan = unhex(t, "374245455400001F")
		}},
		{name: "19-digit PAN", method: tapdata.MethodDDA, mod: func(c *card) {
			c.iccT.PAN = "6212345678901234567"
			c.issT.IssuerID = "621234"
			c.pan = unhex(t, "6212345678901234567F")
		}},
		{name: "certificates valid through the last day of their month", method: tapdata.MethodDDA, mod: func(c *card) {
			c.issT.Expiry = "1126"
			c.iccT.Expiry = "1126"
			c.date = time.Date(2026, 11, 30, 23, 59, 0, 0, time.UTC)
		}},
		{name: "no 9F4A: no AIP in the static data", method: tapdata.MethodDDA, mod: func(c *card) { c.sdaTagList = nil }},
		{name: "static data given verbatim", method: tapdata.MethodSDA, mod: func(c *card) {
			c.staticVerbatim = true
			c.signedStatic = []byte("anything the caller says")
		}, post: func(in *oda.Input) { in.Records = nil; delete(in.Data, "94") }},
		{name: "live key outside test mode", method: tapdata.MethodCDA, live: true, opts: &oda.Options{}},
		{name: "live key in test mode", method: tapdata.MethodCDA, live: true},
		{name: "revocation list without this issuer", method: tapdata.MethodSDA, opts: &oda.Options{TestMode: true,
			Revoked: []oda.Revocation{{RID: [5]byte(testRID), Index: testIndex, Serial: [3]byte{0x12, 0x34, 0x57}}}}},
		{name: "no cache", method: tapdata.MethodCDA, opts: &oda.Options{TestMode: true, CacheSize: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := runCase(t, tc)
			require.Equal(t, tc.method, res.Method)
			require.NotEmpty(t, res.IssuerPKModulus)
			if tc.method != tapdata.MethodSDA {
				require.NotEmpty(t, res.ICCPKModulus)
				require.NotEmpty(t, res.ICCDynamicNumber)
			}
		})
	}
}

func TestVerifyResultValues(t *testing.T) {
	k := loadKeys(t)
	c := newCard(t, tapdata.MethodCDA)
	res, err := oda.NewVerifier(c.store(true), oda.Options{TestMode: true}).Verify(c.input())
	require.NoError(t, err)
	require.Equal(t, k.issuer.N.Bytes(), res.IssuerPKModulus)
	require.Equal(t, k.icc.N.Bytes(), res.ICCPKModulus)
	require.Equal(t, c.idn, res.ICCDynamicNumber)
	require.Equal(t, c.cryptogram[:], res.Cryptogram)

	c = newCard(t, tapdata.MethodSDA)
	res, err = oda.NewVerifier(c.store(true), oda.Options{TestMode: true}).Verify(c.input())
	require.NoError(t, err)
	require.Equal(t, c.dac[:], res.DataAuthCode)
	require.Empty(t, res.ICCPKModulus)
}

func TestVerifyFaults(t *testing.T) {
	k := loadKeys(t)
	I, C, D, F, S := oda.StageIssuer, oda.StageICC, tapdata.MethodDDA, tapdata.MethodFDDA, tapdata.MethodSDA
	for _, tc := range []faultCase{
		// Input.
		{name: "no 8F", method: D, post: del("8F"), stage: oda.StageInput, reason: oda.ReasonMissing, tag: "8F"},
		{name: "8F of 2 bytes", method: D, post: set("8F", []byte{1, 2}), stage: oda.StageInput, reason: oda.ReasonMalformed, tag: "8F"},
		{name: "no 90", method: D, post: del("90"), stage: oda.StageInput, reason: oda.ReasonMissing, tag: "90"},
		{name: "no 9F32", method: D, post: del("9F32"), stage: oda.StageInput, reason: oda.ReasonMissing, tag: "9F32"},
		{name: "no 5A", method: D, post: del("5A"), stage: oda.StageInput, reason: oda.ReasonMissing, tag: "5A"},
		{name: "5A not BCD", method: D, post: set("5A", []byte{0x47, 0x6A}), stage: oda.StageInput, reason: oda.ReasonMalformed, tag: "5A"},
		{name: "5A digit after padding", method: D, post: set("5A", []byte{0x47, 0x61, 0x7F, 0x31}), stage: oda.StageInput, reason: oda.ReasonMalformed, tag: "5A"},
		{name: "no 9F46", method: D, post: del("9F46"), stage: oda.StageInput, reason: oda.ReasonMissing, tag: "9F46"},
		{name: "no 9F47", method: D, post: del("9F47"), stage: oda.StageInput, reason: oda.ReasonMissing, tag: "9F47"},
		{name: "no 93", method: S, post: del("93"), stage: oda.StageInput, reason: oda.ReasonMissing, tag: "93"},
		{name: "no 9F4B", method: D, post: del("9F4B"), stage: oda.StageInput, reason: oda.ReasonMissing, tag: "9F4B"},
		{name: "DDA without DDOL data", method: D, post: func(in *oda.Input) { in.DDOLData = nil }, stage: oda.StageInput, reason: oda.ReasonMissing, tag: "9F49"},
		{name: "fDDA without 9F37", method: F, post: del("9F37"), stage: oda.StageInput, reason: oda.ReasonMissing, tag: "9F37"},
		{name: "fDDA without 9F02", method: F, post: del("9F02"), stage: oda.StageInput, reason: oda.ReasonMissing, tag: "9F02"},
		{name: "fDDA with 5F2A of 3 bytes", method: F, post: set("5F2A", []byte{0, 9, 0x78}), stage: oda.StageInput, reason: oda.ReasonMalformed, tag: "5F2A"},
		{name: "CDA without 9F37", method: tapdata.MethodCDA, post: del("9F37"), stage: oda.StageInput, reason: oda.ReasonMissing, tag: "9F37"},
		{name: "CDA without GENERATE AC response", method: tapdata.MethodCDA, post: func(in *oda.Input) { in.GenACResponse = nil }, stage: oda.StageInput, reason: oda.ReasonMissing, tag: "77"},
		{name: "CDA with a format 1 response", method: tapdata.MethodCDA, post: func(in *oda.Input) { in.GenACResponse = unhex(t, "800A4000010203040506070809") }, stage: oda.StageInput, reason: oda.ReasonMalformed, tag: "77"},
		{name: "CDA response without 9F4B", method: tapdata.MethodCDA, post: func(in *oda.Input) { in.GenACResponse = unhex(t, "77049F270140") }, stage: oda.StageInput, reason: oda.ReasonMissing, tag: "9F4B"},
		{name: "CDA response without 9F27", method: tapdata.MethodCDA, mod: func(c *card) { c.before = nil }, stage: oda.StageInput, reason: oda.ReasonMissing, tag: "9F27"},
		{name: "CDA response truncated", method: tapdata.MethodCDA, post: func(in *oda.Input) { in.GenACResponse = unhex(t, "77089F270140") }, stage: oda.StageInput, reason: oda.ReasonMalformed},
		{name: "no AFL", method: D, post: del("94"), stage: oda.StageInput, reason: oda.ReasonMissing, tag: "94"},
		{name: "9F4A but no AIP", method: D, post: del("82"), stage: oda.StageInput, reason: oda.ReasonMissing, tag: "82"},
		{name: "no RID", method: D, post: func(in *oda.Input) { in.RID = nil }, stage: oda.StageInput, reason: oda.ReasonMissing, tag: "4F"},
		{name: "no transaction date", method: D, post: func(in *oda.Input) { in.Date = time.Time{} }, stage: oda.StageInput, reason: oda.ReasonMissing, tag: "9A"},
		{name: "unknown method", method: D, post: func(in *oda.Input) { in.Method = "XDA" }, stage: oda.StageInput, reason: oda.ReasonMethod},

		// CA public key.
		{name: "unknown CA index", method: D, post: set("8F", []byte{0x93}), stage: oda.StageCAPK, reason: oda.ReasonUnknownCAPK},
		{name: "unknown RID", method: D, post: func(in *oda.Input) { in.RID = []byte{0xA0, 0, 0, 0, 4} }, stage: oda.StageCAPK, reason: oda.ReasonUnknownCAPK},
		{name: "test key outside test mode", method: D, opts: &oda.Options{}, stage: oda.StageCAPK, reason: oda.ReasonTestKey},

		// Issuer certificate.
		{name: "issuer cert shorter than the CA modulus", method: D, post: func(in *oda.Input) { in.Data["90"] = in.Data["90"][1:] }, stage: I, reason: oda.ReasonLength},
		{name: "issuer cert not below the modulus", method: D, post: set("90", bytes.Repeat([]byte{0xFF}, 176)), stage: I, reason: oda.ReasonRecovery},
		{name: "issuer cert corrupted", method: D, post: func(in *oda.Input) { in.Data["90"][100] ^= 1 }, stage: I, reason: oda.ReasonTrailer},
		{name: "issuer trailer", method: D, mod: func(c *card) { c.issT.Trailer = 0xBD }, stage: I, reason: oda.ReasonTrailer},
		{name: "issuer header", method: D, mod: func(c *card) { c.issT.Header = 0x6B }, stage: I, reason: oda.ReasonHeader},
		{name: "issuer format 04", method: D, mod: func(c *card) { c.issT.Format = 0x04 }, stage: I, reason: oda.ReasonFormat},
		{name: "issuer hash algorithm 02", method: D, mod: func(c *card) { c.issT.HashAlg = 0x02 }, stage: I, reason: oda.ReasonHashAlgorithm},
		{name: "issuer key length beyond the CA key", method: D, mod: func(c *card) { c.issT.KeyLength = 177 }, stage: I, reason: oda.ReasonKeyLength},
		{name: "issuer remainder missing", method: D, post: del("92"), stage: I, reason: oda.ReasonRemainder},
		{name: "issuer remainder empty", method: D, post: set("92", []byte{}), stage: I, reason: oda.ReasonRemainder},
		{name: "issuer remainder too long", method: D, post: func(in *oda.Input) { in.Data["92"] = append(in.Data["92"], 0) }, stage: I, reason: oda.ReasonRemainder},
		{name: "issuer remainder not needed", method: D, mod: func(c *card) {
			c.issuer = k.issuerSmall
			c.issT.Key = &k.issuerSmall.PublicKey
		}, post: set("92", []byte{1, 2}), stage: I, reason: oda.ReasonRemainder},
		{name: "issuer remainder altered", method: D, post: func(in *oda.Input) { in.Data["92"][0] ^= 1 }, stage: I, reason: oda.ReasonHash},
		{name: "issuer exponent length", method: D, mod: func(c *card) { c.issT.ExponentLength = 3 }, stage: I, reason: oda.ReasonExponentLength},
		{name: "9F32 not the certified exponent", method: D, post: set("9F32", []byte{1, 0, 1}), stage: I, reason: oda.ReasonExponentLength},
		{name: "issuer hash", method: D, mod: func(c *card) { c.issT.CorruptHash = true }, stage: I, reason: oda.ReasonHash},
		{name: "issuer public key algorithm 02", method: D, mod: func(c *card) { c.issT.PKAlg = 0x02 }, stage: I, reason: oda.ReasonPKAlgorithm},
		{name: "issuer exponent 5", method: D, mod: func(c *card) { c.issT.Key = pub(k.issuer, 5) }, stage: I, reason: oda.ReasonExponent},
		{name: "issuer identifier of another issuer", method: D, mod: func(c *card) { c.issT.IssuerID = "476174" }, stage: I, reason: oda.ReasonIssuerIdentifier},
		{name: "issuer identifier of 2 digits", method: D, mod: func(c *card) { c.issT.IssuerID = "47" }, stage: I, reason: oda.ReasonIssuerIdentifier},
		{name: "issuer identifier with a non-digit", method: D, mod: func(c *card) { c.issT.IssuerID = "4761A3" }, stage: I, reason: oda.ReasonIssuerIdentifier},
		{name: "issuer identifier longer than the PAN", method: D, mod: func(c *card) { c.issT.IssuerID = "47617390" }, post: set("5A", unhex(t, "476173")), stage: I, reason: oda.ReasonIssuerIdentifier},
		{name: "issuer expiry month 13", method: D, mod: func(c *card) { c.issT.Expiry = "1330" }, stage: I, reason: oda.ReasonDate},
		{name: "issuer expiry not BCD", method: D, mod: func(c *card) { c.issT.Expiry = "12A0" }, stage: I, reason: oda.ReasonDate},
		{name: "issuer certificate expired last month", method: D, mod: func(c *card) { c.issT.Expiry = "1026" }, stage: I, reason: oda.ReasonExpired},
		{name: "issuer certificate expired on the 1st", method: D, mod: func(c *card) {
			c.issT.Expiry = "1126"
			c.date = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		}, stage: I, reason: oda.ReasonExpired},
		{name: "issuer certificate of 1999", method: D, mod: func(c *card) { c.issT.Expiry = "1299" }, stage: I, reason: oda.ReasonExpired},
		{name: "issuer certificate revoked", method: D, opts: &oda.Options{TestMode: true,
			Revoked: []oda.Revocation{{RID: [5]byte(testRID), Index: testIndex, Serial: [3]byte{0x12, 0x34, 0x56}}}}, stage: I, reason: oda.ReasonRevoked},

		// Static data.
		{name: "AFL of 3 bytes", method: D, post: set("94", []byte{0x08, 1, 1}), stage: oda.StageStaticData, reason: oda.ReasonAFL},
		{name: "AFL SFI 0", method: D, post: set("94", []byte{0x00, 1, 1, 1}), stage: oda.StageStaticData, reason: oda.ReasonAFL},
		{name: "AFL SFI 31", method: D, post: set("94", []byte{0xF8, 1, 1, 1}), stage: oda.StageStaticData, reason: oda.ReasonAFL},
		{name: "AFL low bits set", method: D, post: set("94", []byte{0x09, 1, 1, 1}), stage: oda.StageStaticData, reason: oda.ReasonAFL},
		{name: "AFL first record 0", method: D, post: set("94", []byte{0x08, 0, 1, 1}), stage: oda.StageStaticData, reason: oda.ReasonAFL},
		{name: "AFL last before first", method: D, post: set("94", []byte{0x08, 2, 1, 0}), stage: oda.StageStaticData, reason: oda.ReasonAFL},
		{name: "AFL flags more records than it names", method: D, post: set("94", []byte{0x08, 1, 1, 2}), stage: oda.StageStaticData, reason: oda.ReasonAFL},
		{name: "flagged record not read", method: D, post: func(in *oda.Input) { in.Records = in.Records[1:] }, stage: oda.StageStaticData, reason: oda.ReasonMissingRecord},
		{name: "flagged SFI 1 record not template 70", method: D, post: func(in *oda.Input) {
			in.Records[0].Data = bytes.Clone(in.Records[0].Data)
			in.Records[0].Data[0] = 0x77
		}, stage: oda.StageStaticData, reason: oda.ReasonRecordTemplate},
		{name: "flagged SFI 1 record with data after template 70", method: D, post: func(in *oda.Input) {
			in.Records[0].Data = append(bytes.Clone(in.Records[0].Data), 0x90, 0x00)
		}, stage: oda.StageStaticData, reason: oda.ReasonRecordTemplate},
		{name: "flagged SFI 1 record truncated", method: D, post: func(in *oda.Input) {
			in.Records[0].Data = in.Records[0].Data[:len(in.Records[0].Data)-1]
		}, stage: oda.StageStaticData, reason: oda.ReasonRecordTemplate},
		{name: "flagged SFI 11 record altered", method: D, post: func(in *oda.Input) { in.Records[2].Data = []byte{0xDF, 0x01, 0x02, 0xAB, 0xCE} }, stage: C, reason: oda.ReasonHash},
		{name: "SDA tag list naming another tag", method: D, mod: func(c *card) { c.sdaTagList = []byte{0x9F, 0x37} }, stage: oda.StageStaticData, reason: oda.ReasonSDATagList},
		{name: "SDA tag list 82 twice", method: D, mod: func(c *card) { c.sdaTagList = []byte{0x82, 0x82} }, stage: oda.StageStaticData, reason: oda.ReasonSDATagList},
		{name: "SDA tag list empty", method: D, mod: func(c *card) { c.sdaTagList = []byte{} }, stage: oda.StageStaticData, reason: oda.ReasonSDATagList},
		{name: "AIP altered after signing", method: S, post: set("82", []byte{0x79, 0x00}), stage: oda.StageSSAD, reason: oda.ReasonHash},

		// ICC certificate.
		{name: "ICC cert shorter than the issuer modulus", method: D, post: func(in *oda.Input) { in.Data["9F46"] = in.Data["9F46"][:143] }, stage: C, reason: oda.ReasonLength},
		{name: "ICC cert corrupted", method: D, post: func(in *oda.Input) { in.Data["9F46"][50] ^= 0x80 }, stage: C, reason: oda.ReasonTrailer},
		{name: "ICC trailer", method: D, mod: func(c *card) { c.iccT.Trailer = 0xB0 }, stage: C, reason: oda.ReasonTrailer},
		{name: "ICC header", method: D, mod: func(c *card) { c.iccT.Header = 0x6C }, stage: C, reason: oda.ReasonHeader},
		{name: "ICC format 02", method: D, mod: func(c *card) { c.iccT.Format = 0x02 }, stage: C, reason: oda.ReasonFormat},
		{name: "ICC hash algorithm 02", method: D, mod: func(c *card) { c.iccT.HashAlg = 0x02 }, stage: C, reason: oda.ReasonHashAlgorithm},
		{name: "ICC key longer than the issuer key", method: D, mod: func(c *card) { c.iccT.KeyLength = 145 }, stage: C, reason: oda.ReasonKeyLength},
		{name: "ICC key length too short", method: D, mod: func(c *card) { c.iccT.KeyLength = 10 }, stage: C, reason: oda.ReasonKeyLength},
		{name: "ICC remainder missing", method: D, post: del("9F48"), stage: C, reason: oda.ReasonRemainder},
		{name: "ICC remainder short", method: D, post: func(in *oda.Input) { in.Data["9F48"] = in.Data["9F48"][1:] }, stage: C, reason: oda.ReasonRemainder},
		{name: "ICC remainder not needed", method: D, mod: func(c *card) {
			c.icc = k.icc65537
			c.iccT.Key = &k.icc65537.PublicKey
		}, post: set("9F48", []byte{0}), stage: C, reason: oda.ReasonRemainder},
		{name: "ICC exponent length", method: D, mod: func(c *card) { c.iccT.ExponentLength = 2 }, stage: C, reason: oda.ReasonExponentLength},
		{name: "ICC hash", method: D, mod: func(c *card) { c.iccT.CorruptHash = true }, stage: C, reason: oda.ReasonHash},
		{name: "ICC certifies other static data", method: D, mod: func(c *card) { c.signedStatic = []byte{1, 2, 3} }, stage: C, reason: oda.ReasonHash},
		{name: "ICC public key algorithm 00", method: D, mod: func(c *card) { c.iccT.PKAlg = 0xF0 }, stage: C, reason: oda.ReasonPKAlgorithm},
		{name: "ICC exponent 17", method: D, mod: func(c *card) { c.iccT.Key = pub(k.icc, 17) }, stage: C, reason: oda.ReasonExponent},
		{name: "ICC certificate of another PAN", method: D, mod: func(c *card) { c.iccT.PAN = "4761739001010011" }, stage: C, reason: oda.ReasonPANMismatch},
		{name: "ICC certificate PAN with one more digit", method: D, mod: func(c *card) { c.iccT.PAN = "47617390010100100" }, stage: C, reason: oda.ReasonPANMismatch},
		{name: "ICC certificate PAN one digit short", method: D, mod: func(c *card) { c.iccT.PAN = "476173900101001" }, stage: C, reason: oda.ReasonPANMismatch},
		{name: "ICC certificate PAN badly padded", method: D, mod: func(c *card) { c.iccT.PAN = "4761739001010010F0" }, stage: C, reason: oda.ReasonPANMismatch},
		{name: "ICC expiry month 00", method: D, mod: func(c *card) { c.iccT.Expiry = "0030" }, stage: C, reason: oda.ReasonDate},
		{name: "ICC certificate expired", method: D, mod: func(c *card) { c.iccT.Expiry = "1025" }, stage: C, reason: oda.ReasonExpired},

		// SDA.
		{name: "SSAD shorter than the issuer modulus", method: S, post: func(in *oda.Input) { in.Data["93"] = in.Data["93"][1:] }, stage: oda.StageSSAD, reason: oda.ReasonLength},
		{name: "SSAD trailer", method: S, mod: func(c *card) { c.ssadFaults.Trailer = 0xBB }, stage: oda.StageSSAD, reason: oda.ReasonTrailer},
		{name: "SSAD header", method: S, mod: func(c *card) { c.ssadFaults.Header = 0x60 }, stage: oda.StageSSAD, reason: oda.ReasonHeader},
		{name: "SSAD format 05", method: S, mod: func(c *card) { c.ssadFaults.Format = 0x05 }, stage: oda.StageSSAD, reason: oda.ReasonFormat},
		{name: "SSAD hash algorithm 03", method: S, mod: func(c *card) { c.ssadFaults.HashAlg = 0x03 }, stage: oda.StageSSAD, reason: oda.ReasonHashAlgorithm},
		{name: "SSAD hash", method: S, mod: func(c *card) { c.ssadFaults.CorruptHash = true }, stage: oda.StageSSAD, reason: oda.ReasonHash},
		{name: "SSAD over other static data", method: S, mod: func(c *card) { c.signedStatic = []byte{9} }, stage: oda.StageSSAD, reason: oda.ReasonHash},
		{name: "SDA under an issuer certificate of a later issuer", method: S, mod: func(c *card) { c.issT.IssuerID = "476172" }, stage: I, reason: oda.ReasonIssuerIdentifier},

		// DDA and fDDA.
		{name: "SDAD shorter than the ICC modulus", method: D, post: func(in *oda.Input) { in.Data["9F4B"] = in.Data["9F4B"][:127] }, stage: oda.StageSDAD, reason: oda.ReasonLength},
		{name: "SDAD corrupted", method: D, post: func(in *oda.Input) { in.Data["9F4B"][3] ^= 1 }, stage: oda.StageSDAD, reason: oda.ReasonTrailer},
		{name: "SDAD trailer", method: D, mod: func(c *card) { c.sdadFaults.Trailer = 0x01 }, stage: oda.StageSDAD, reason: oda.ReasonTrailer},
		{name: "SDAD header", method: D, mod: func(c *card) { c.sdadFaults.Header = 0x4A }, stage: oda.StageSDAD, reason: oda.ReasonHeader},
		{name: "DDA SDAD format 95", method: D, mod: func(c *card) { c.sdadFormat = odatest.FormatVisaFDDA }, stage: oda.StageSDAD, reason: oda.ReasonFormat},
		{name: "DDA SDAD format 03", method: D, mod: func(c *card) { c.sdadFormat = odatest.FormatSSAD }, stage: oda.StageSDAD, reason: oda.ReasonFormat},
		{name: "fDDA SDAD format 15", method: F, mod: func(c *card) { c.sdadFormat = 0x15 }, stage: oda.StageSDAD, reason: oda.ReasonFormat},
		{name: "SDAD hash algorithm 02", method: D, mod: func(c *card) { c.sdadFaults.HashAlg = 0x02 }, stage: oda.StageSDAD, reason: oda.ReasonHashAlgorithm},
		{name: "ICC dynamic number of 1 byte", method: D, mod: func(c *card) { c.idn = []byte{1} }, stage: oda.StageSDAD, reason: oda.ReasonDynamicData},
		{name: "ICC dynamic number of 9 bytes", method: D, mod: func(c *card) { c.idn = make([]byte, 9) }, stage: oda.StageSDAD, reason: oda.ReasonDynamicData},
		{name: "SDAD hash", method: D, mod: func(c *card) { c.sdadFaults.CorruptHash = true }, stage: oda.StageSDAD, reason: oda.ReasonHash},
		{name: "DDA signature over another challenge", method: D, post: func(in *oda.Input) { in.DDOLData = []byte{0xCA, 0xFE, 0xBA, 0xBF} }, stage: oda.StageSDAD, reason: oda.ReasonHash},
		{name: "fDDA other UN", method: F, post: set("9F37", []byte{1, 2, 3, 5}), stage: oda.StageSDAD, reason: oda.ReasonHash},
		{name: "fDDA other amount", method: F, post: set("9F02", []byte{0, 0, 0, 0, 0x02, 0x91}), stage: oda.StageSDAD, reason: oda.ReasonHash},
		{name: "fDDA other currency", method: F, post: set("5F2A", []byte{0x08, 0x26}), stage: oda.StageSDAD, reason: oda.ReasonHash},
		{name: "fDDA other card authentication data", method: F, post: func(in *oda.Input) { in.Data["9F69"][6] ^= 1 }, stage: oda.StageSDAD, reason: oda.ReasonHash},
		{name: "fDDA version 02", method: F, post: func(in *oda.Input) { in.Data["9F69"][0] = 2 }, stage: oda.StageSDAD, reason: oda.ReasonFDDAVersion},
		{name: "fDDA version 01 signature presented as 00", method: F, post: del("9F69"), stage: oda.StageSDAD, reason: oda.ReasonHash},

		// CDA.
		{name: "CDA SDAD trailer", method: tapdata.MethodCDA, mod: func(c *card) { c.sdadFaults.Trailer = 0x0C }, stage: oda.StageCDA, reason: oda.ReasonTrailer},
		{name: "CDA SDAD format 95", method: tapdata.MethodCDA, mod: func(c *card) { c.sdadFormat = odatest.FormatVisaFDDA }, stage: oda.StageCDA, reason: oda.ReasonFormat},
		{name: "CDA SDAD hash algorithm", method: tapdata.MethodCDA, mod: func(c *card) { c.sdadFaults.HashAlg = 0xFF }, stage: oda.StageCDA, reason: oda.ReasonHashAlgorithm},
		{name: "CDA dynamic data without the hash code", method: tapdata.MethodCDA, mod: func(c *card) { c.cdaDynamic = []byte{2, 0, 1, 0x40, 1, 2, 3, 4, 5, 6, 7, 8} }, stage: oda.StageCDA, reason: oda.ReasonDynamicData},
		{name: "CDA signature over another UN", method: tapdata.MethodCDA, post: set("9F37", []byte{9, 9, 9, 9}), stage: oda.StageCDA, reason: oda.ReasonHash},
		{name: "CDA hash", method: tapdata.MethodCDA, mod: func(c *card) { c.sdadFaults.CorruptHash = true }, stage: oda.StageCDA, reason: oda.ReasonHash},
		{name: "CID in the response differs from the signed CID", method: tapdata.MethodCDA, mod: func(c *card) {
			c.before = append(enc(t, "9F27", []byte{0x80}), enc(t, "9F36", []byte{0x00, 0x2A})...)
			c.tdhcOver = append(bytes.Clone(c.before), c.after...)
		}, stage: oda.StageCDA, reason: oda.ReasonCIDMismatch},
		{name: "transaction data hash over other CDOL1 data", method: tapdata.MethodCDA, post: func(in *oda.Input) { in.CDOL1Data = append(bytes.Clone(in.CDOL1Data[1:]), 0) }, stage: oda.StageCDA, reason: oda.ReasonTransactionDataHash},
		{name: "transaction data hash over other PDOL data", method: tapdata.MethodCDA, post: func(in *oda.Input) { in.PDOLData = nil }, stage: oda.StageCDA, reason: oda.ReasonTransactionDataHash},
		{name: "transaction data hash with 9F4B included", method: tapdata.MethodCDA, mod: func(c *card) {
			c.tdhcOver = append(bytes.Clone(c.before), enc(t, "9F4B", []byte{1})...)
		}, stage: oda.StageCDA, reason: oda.ReasonTransactionDataHash},
		{name: "response objects reordered", method: tapdata.MethodCDA, mod: func(c *card) {
			c.tdhcOver = append(bytes.Clone(c.after), c.before...)
		}, stage: oda.StageCDA, reason: oda.ReasonTransactionDataHash},
		{name: "response object added after signing", method: tapdata.MethodCDA, post: func(in *oda.Input) {
			_, content, _, err := tlv.Split(in.GenACResponse)
			require.NoError(t, err)
			content = append(bytes.Clone(content), enc(t, "9F26", make([]byte, 8))...)
			in.GenACResponse = enc(t, "77", content)
		}, stage: oda.StageCDA, reason: oda.ReasonTransactionDataHash},
	} {
		t.Run(tc.name, func(t *testing.T) { runCase(t, tc) })
	}
}

// An ICC certificate failure still reports the recovered issuer key; a
// signature failure still reports both keys.
func TestVerifyPartialResult(t *testing.T) {
	k := loadKeys(t)
	res, _ := runCase(t, faultCase{method: tapdata.MethodDDA, mod: func(c *card) { c.iccT.CorruptHash = true }, stage: oda.StageICC, reason: oda.ReasonHash})
	require.Equal(t, k.issuer.N.Bytes(), res.IssuerPKModulus)
	require.Empty(t, res.ICCPKModulus)
	res, _ = runCase(t, faultCase{method: tapdata.MethodCDA, mod: func(c *card) { c.sdadFaults.CorruptHash = true }, stage: oda.StageCDA, reason: oda.ReasonHash})
	require.Equal(t, k.issuer.N.Bytes(), res.IssuerPKModulus)
	require.Equal(t, k.icc.N.Bytes(), res.ICCPKModulus)
	require.Empty(t, res.ICCDynamicNumber)
	res, _ = runCase(t, faultCase{method: tapdata.MethodCDA, post: func(in *oda.Input) { in.CDOL1Data = nil }, stage: oda.StageCDA, reason: oda.ReasonTransactionDataHash})
	require.NotEmpty(t, res.ICCDynamicNumber, "the dynamic number is recovered before the transaction data hash check")
}

func TestVerifyAuto(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method tapdata.Method // the card is built for this method
		aip    []byte
		post   func(in *oda.Input)
		want   tapdata.Method
		reason oda.Reason
	}{
		{name: "CDA", method: tapdata.MethodCDA, aip: []byte{0x39, 0}, want: tapdata.MethodCDA},
		{name: "CDA card, AIP without CDA", method: tapdata.MethodCDA, aip: []byte{0x38, 0}, reason: oda.ReasonMethod},
		{name: "DDA", method: tapdata.MethodDDA, aip: []byte{0x20, 0}, want: tapdata.MethodDDA},
		{name: "fDDA", method: tapdata.MethodFDDA, aip: []byte{0x20, 0}, want: tapdata.MethodFDDA},
		{name: "DDA card, AIP without DDA", method: tapdata.MethodDDA, aip: []byte{0x40, 0}, reason: oda.ReasonMethod},
		{name: "SDA", method: tapdata.MethodSDA, aip: []byte{0x40, 0}, want: tapdata.MethodSDA},
		{name: "SDA card, AIP without SDA", method: tapdata.MethodSDA, aip: []byte{0x20, 0}, reason: oda.ReasonMethod},
		{name: "DDA preferred to SDA", method: tapdata.MethodDDA, aip: []byte{0x60, 0}, post: func(in *oda.Input) { in.Data["93"] = []byte{1} }, want: tapdata.MethodDDA},
		{name: "no AIP", method: tapdata.MethodDDA, aip: []byte{0x20, 0}, post: del("82"), reason: oda.ReasonMissing},
		{name: "AIP of 1 byte", method: tapdata.MethodDDA, aip: []byte{0x20, 0}, post: set("82", []byte{0x20}), reason: oda.ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCard(t, tc.method)
			c.aip = tc.aip
			in := c.input()
			in.Method = tapdata.MethodAuto
			if tc.post != nil {
				tc.post(in)
			}
			res, err := oda.NewVerifier(c.store(true), oda.Options{TestMode: true}).Verify(in)
			if tc.reason != "" {
				var e *oda.Error
				require.True(t, errors.As(err, &e), "%v", err)
				require.Equal(t, oda.StageInput, e.Stage)
				require.Equal(t, tc.reason, e.Reason)
				require.Equal(t, tapdata.MethodAuto, res.Method)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, res.Method)
		})
	}
}

// The cache keeps the issuer key, never the verdict: a cached issuer is
// still checked against the PAN, the date and the revocation list.
func TestIssuerCache(t *testing.T) {
	c := newCard(t, tapdata.MethodCDA)
	in := c.input()
	ks := c.store(true)
	v := oda.NewVerifier(ks, oda.Options{TestMode: true, CacheSize: 1})
	_, err := v.Verify(in)
	require.NoError(t, err)

	late := *in
	late.Date = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err = v.Verify(&late)
	var e *oda.Error
	require.True(t, errors.As(err, &e))
	require.Equal(t, oda.StageIssuer, e.Stage)
	require.Equal(t, oda.ReasonExpired, e.Reason)

	other := *in
	other.Data = map[string][]byte{}
	for k, v := range in.Data {
		other.Data[k] = v
	}
	other.Data["5A"] = unhex(t, "5413330089020011")
	_, err = v.Verify(&other)
	require.True(t, errors.As(err, &e))
	require.Equal(t, oda.ReasonIssuerIdentifier, e.Reason)

	// A different remainder with the same certificate is not a cache hit.
	other.Data["5A"] = in.Data["5A"]
	other.Data["92"] = append(bytes.Clone(in.Data["92"][1:]), 0)
	_, err = v.Verify(&other)
	require.True(t, errors.As(err, &e))
	require.Equal(t, oda.ReasonHash, e.Reason)

	// Another card's issuer evicts the first from a cache of one.
	c2 := newCard(t, tapdata.MethodSDA)
	c2.issT.Serial = []byte{9, 9, 9}
	in2 := c2.input()
	_, err = v.Verify(in2)
	require.NoError(t, err)
	_, err = v.Verify(in)
	require.NoError(t, err)

	revoked := oda.NewVerifier(ks, oda.Options{TestMode: true, Revoked: []oda.Revocation{{RID: [5]byte(testRID), Index: testIndex, Serial: [3]byte{9, 9, 9}}}})
	_, err = revoked.Verify(in)
	require.NoError(t, err)
	_, err = revoked.Verify(in2)
	require.True(t, errors.As(err, &e))
	require.Equal(t, oda.ReasonRevoked, e.Reason)
	_, err = revoked.Verify(in2)
	require.True(t, errors.As(err, &e), "revocation is checked on a cache hit too")
	require.Equal(t, oda.ReasonRevoked, e.Reason)
}

func TestVerifyConcurrent(t *testing.T) {
	var ins []*oda.Input
	var c *card
	for _, m := range []tapdata.Method{tapdata.MethodSDA, tapdata.MethodDDA, tapdata.MethodFDDA, tapdata.MethodCDA} {
		c = newCard(t, m)
		ins = append(ins, c.input())
	}
	v := oda.NewVerifier(c.store(true), oda.Options{TestMode: true, CacheSize: 2})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				in := ins[(g+i)%len(ins)]
				if _, err := v.Verify(in); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestErrorMessage(t *testing.T) {
	err := &oda.Error{Stage: oda.StageICC, Reason: oda.ReasonPANMismatch}
	require.Equal(t, "oda: icc: certificate PAN does not match the application PAN", err.Error())
	err = &oda.Error{Stage: oda.StageInput, Reason: oda.ReasonMissing, Tag: "9F46"}
	require.Equal(t, "oda: input: required data missing (9F46)", err.Error())
	require.Equal(t, "oda: sdad: signature verification failed", (&oda.Error{Stage: oda.StageSDAD, Reason: oda.ReasonHash}).Error())
	inner := errors.New("inner")
	err = &oda.Error{Stage: oda.StageInput, Reason: oda.ReasonMalformed, Err: inner}
	require.ErrorIs(t, err, inner)
	require.ErrorIs(t, err, oda.ErrVerification)
}

func TestVerifyNil(t *testing.T) {
	res, err := oda.NewVerifier(nil, oda.Options{}).Verify(nil)
	require.NotNil(t, res)
	require.ErrorIs(t, err, oda.ErrVerification)
}

func TestStaticData(t *testing.T) {
	c := newCard(t, tapdata.MethodDDA)
	got, err := oda.StaticData(c.input())
	require.NoError(t, err)
	require.Equal(t, c.static(), got)
	in := c.input()
	in.Data["9F4A"] = []byte{0x9F, 0x37}
	_, err = oda.StaticData(in)
	var e *oda.Error
	require.True(t, errors.As(err, &e))
	require.Equal(t, oda.ReasonSDATagList, e.Reason)
}
