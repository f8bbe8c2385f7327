package oda

import (
	"bytes"
	"crypto/sha1"
	"hash"
	"math/big"
	"sync"
	"time"

	"github.com/faregate/faregate/emv/tapdata"
)

// Input is everything one verification needs. Data holds the card's data
// objects and the terminal's, keyed by upper-case hex tag ("9F46"); an
// object of zero length counts as present (an empty remainder "92" is no
// remainder).
//
// The objects used are 8F, 90, 92, 9F32 (issuer certificate), 5A (PAN),
// 9F46, 9F47, 9F48 (ICC certificate), 82 (AIP), 94 (AFL) and 9F4A (static
// data), 93 (SDA), 9F4B (DDA, fDDA), 9F37, 9F02, 5F2A, 9F69 (fDDA terminal
// data), 9F37 (CDA).
type Input struct {
	RID    []byte         // the RID of the selected application (5 bytes, or the whole AID)
	Method tapdata.Method // MethodAuto or "" to choose from the AIP and the data
	// Date is the transaction date (9A): certificate and CA key expiry are
	// judged on it, never on the wall clock. Only its year, month and day
	// count.
	Date    time.Time
	Data    map[string][]byte
	Records []tapdata.Record
	// StaticData, when StaticDataSet, is the static data to be
	// authenticated, used verbatim instead of the records, 94 and 9F4A.
	StaticData    []byte
	StaticDataSet bool
	DDOLData      []byte // INTERNAL AUTHENTICATE command data (DDA)
	PDOLData      []byte // GET PROCESSING OPTIONS data: the value of template 83 (CDA)
	CDOL1Data     []byte // first GENERATE AC command data (CDA)
	// GenACResponse is the first GENERATE AC response (CDA): template 77
	// or its content, without the status word.
	GenACResponse []byte
}

// Result is what a verification recovered. Verify returns it also on
// failure, holding the values of every stage that succeeded.
type Result struct {
	// Method is the method verified, or the one asked for (auto) when
	// none could be chosen.
	Method           tapdata.Method
	IssuerPKModulus  []byte
	ICCPKModulus     []byte
	ICCDynamicNumber []byte // DDA, fDDA, CDA
	DataAuthCode     []byte // SDA: Data Authentication Code (9F45)
	Cryptogram       []byte // CDA: the Application Cryptogram (9F26) from the signature
}

// Revocation names a revoked issuer public key certificate: the RID, the CA
// key index and the certificate serial number (EMV Book 2, 5.3 step 10).
type Revocation struct {
	RID    [5]byte
	Index  byte
	Serial [3]byte
}

// Options configure a Verifier. The zero value is a live gate: test keys
// refused, no revocations, a cache of DefaultCacheSize issuer keys.
type Options struct {
	// TestMode allows CA keys marked test.
	TestMode bool
	// Revoked lists revoked issuer certificates.
	Revoked []Revocation
	// CacheSize bounds the number of recovered issuer keys kept; 0 means
	// DefaultCacheSize, a negative value disables the cache.
	CacheSize int
}

// DefaultCacheSize is the issuer key cache bound when Options.CacheSize is 0.
const DefaultCacheSize = 256

// Verifier performs offline data authentication against one CA key list.
// It is safe for concurrent use.
type Verifier struct {
	keys     *KeyStore
	testMode bool
	revoked  map[[9]byte]struct{}
	cache    *issuerCache
}

// NewVerifier returns a Verifier trusting the keys of one CA key list.
func NewVerifier(keys *KeyStore, opts Options) *Verifier {
	v := &Verifier{keys: keys, testMode: opts.TestMode}
	if len(opts.Revoked) > 0 {
		v.revoked = make(map[[9]byte]struct{}, len(opts.Revoked))
		for _, r := range opts.Revoked {
			v.revoked[revocationKey(r.RID[:], r.Index, r.Serial[:])] = struct{}{}
		}
	}
	size := opts.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		v.cache = newIssuerCache(size)
	}
	return v
}

func revocationKey(rid []byte, index byte, serial []byte) (k [9]byte) {
	copy(k[:5], rid)
	k[5] = index
	copy(k[6:], serial)
	return k
}

// Book 2 recovered data constants.
const (
	header          = 0x6A
	trailer         = 0xBC
	formatIssuer    = 0x02
	formatSSAD      = 0x03
	formatICC       = 0x04
	formatSDAD      = 0x05
	formatVisaFDDA  = 0x95
	hashSHA1        = 0x01
	pkRSA           = 0x01
	hashLen         = sha1.Size
	issuerFixedLen  = 36 // issuer certificate bytes other than the key field
	iccFixedLen     = 42 // ICC certificate bytes other than the key field
	sdadFixedLen    = 25
	maxDynNumberLen = 8
	minDynNumberLen = 2
	cdaDynFixedLen  = 1 + 8 + hashLen // CID, cryptogram, transaction data hash after the number (Book 2 Table 19)
)

// scratch holds the buffers of one verification; pooled so a tap allocates
// little.
type scratch struct {
	rec     [MaxModulusLen]byte
	static  []byte
	h       hash.Hash
	sum     [hashLen]byte
	x, y    big.Int
	t, q    big.Int
	pan     [20]byte
	certPAN [20]byte
}

var scratchPool = sync.Pool{New: func() any { return &scratch{h: sha1.New()} }}

// Verify authenticates the card data in `in` offline.
//
// With MethodAuto the method is chosen from the AIP (82, required) and the
// data present: CDA when the AIP says CDA and the GENERATE AC response
// carries 9F4B; else, when the AIP says DDA and 9F4B is present, DDA if DDOL
// data was sent and fDDA otherwise; else SDA when the AIP says SDA and 93 is
// present. An explicit method is verified as asked.
//
// On failure the error is an *Error (errors.As) and the Result holds every
// value recovered before the failing stage. Verify never reads the clock:
// in.Date is the transaction date.
func (v *Verifier) Verify(in *Input) (*Result, error) {
	res := &Result{Method: tapdata.MethodAuto}
	if in == nil {
		return res, fail(StageInput, ReasonMissing)
	}
	if in.Method != "" {
		res.Method = in.Method
	}
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	if err := v.verify(s, in, res); err != nil {
		return res, err
	}
	return res, nil
}

func (v *Verifier) verify(s *scratch, in *Input, res *Result) *Error {
	method, err := chooseMethod(in)
	if err != nil {
		return err
	}
	res.Method = method
	panDigits, err := checkIdentity(s, in)
	if err != nil {
		return err
	}
	ca, idx, err := v.caKey(in)
	if err != nil {
		return err
	}
	iss, err := v.trustedIssuer(s, in, ca, idx, panDigits)
	if iss != nil {
		res.IssuerPKModulus = bytes.Clone(iss.modulus)
	}
	if err != nil {
		return err
	}
	static, err := staticData(s, in)
	if err != nil {
		return err
	}
	if method == tapdata.MethodSDA {
		res.DataAuthCode, err = verifySSAD(s, in, &iss.key, static)
		return err
	}
	icc, iccMod, err := iccKey(s, in, &iss.key, static, panDigits)
	if err != nil {
		return err
	}
	res.ICCPKModulus = iccMod
	switch method {
	case tapdata.MethodDDA, tapdata.MethodFDDA:
		return verifySDAD(s, in, method, &icc, res)
	default: // CDA
		return verifyCDA(s, in, &icc, res)
	}
}

// checkIdentity checks what every method needs before any key: the RID,
// the transaction date and the PAN, whose digits it returns.
func checkIdentity(s *scratch, in *Input) ([]byte, *Error) {
	if len(in.RID) < 5 {
		return nil, failTag(StageInput, ReasonMissing, "4F")
	}
	if in.Date.IsZero() {
		return nil, failTag(StageInput, ReasonMissing, "9A")
	}
	pan, ok := in.Data["5A"]
	if !ok {
		return nil, failTag(StageInput, ReasonMissing, "5A")
	}
	panDigits, ok := cnDigits(pan, s.pan[:0])
	if !ok || len(panDigits) < 3 {
		return nil, failTag(StageInput, ReasonMalformed, "5A")
	}
	return panDigits, nil
}

// caKey finds the CA public key (8F under the RID) and checks it may be
// used on the transaction date.
func (v *Verifier) caKey(in *Input) (*caEntry, byte, *Error) {
	idx, err := need(in, "8F", 1)
	if err != nil {
		return nil, 0, err
	}
	ca := v.keys.lookup(in.RID[:5], idx[0])
	switch {
	case ca == nil:
		return nil, 0, fail(StageCAPK, ReasonUnknownCAPK)
	case ca.key.Test && !v.testMode:
		return nil, 0, fail(StageCAPK, ReasonTestKey)
	case !ca.key.Expiry.IsZero() && afterDay(in.Date, ca.key.Expiry):
		return nil, 0, fail(StageCAPK, ReasonExpired)
	}
	return ca, idx[0], nil
}

// trustedIssuer recovers the issuer public key and runs the checks that
// depend on the transaction: issuer identifier against the PAN, expiry,
// revocation. It returns the certificate also on failure (nil only when
// recovery failed), so the recovered modulus is reported.
func (v *Verifier) trustedIssuer(s *scratch, in *Input, ca *caEntry, idx byte, panDigits []byte) (*issuerCert, *Error) {
	iss, err := v.issuer(s, in, ca)
	if err != nil {
		return nil, err
	}
	if !prefixDigits(iss.id[:], panDigits) {
		return iss, fail(StageIssuer, ReasonIssuerIdentifier)
	}
	if err := checkExpiry(StageIssuer, iss.expiry, in.Date); err != nil {
		return iss, err
	}
	if v.revoked != nil {
		if _, bad := v.revoked[revocationKey(in.RID[:5], idx, iss.serial[:])]; bad {
			return iss, fail(StageIssuer, ReasonRevoked)
		}
	}
	return iss, nil
}

func chooseMethod(in *Input) (tapdata.Method, *Error) {
	switch in.Method {
	case tapdata.MethodSDA, tapdata.MethodDDA, tapdata.MethodFDDA, tapdata.MethodCDA:
		return in.Method, nil
	case "", tapdata.MethodAuto:
	default:
		return "", fail(StageInput, ReasonMethod)
	}
	b, ok := in.Data["82"]
	if !ok {
		return "", failTag(StageInput, ReasonMissing, "82")
	}
	if len(b) != 2 {
		return "", failTag(StageInput, ReasonMalformed, "82")
	}
	aip := tapdata.AIP(b)
	if aip.CDA() && len(in.GenACResponse) > 0 && genACHasSDAD(in.GenACResponse) {
		return tapdata.MethodCDA, nil
	}
	if _, ok := in.Data["9F4B"]; ok && aip.DDA() {
		if len(in.DDOLData) > 0 {
			return tapdata.MethodDDA, nil
		}
		return tapdata.MethodFDDA, nil
	}
	if _, ok := in.Data["93"]; ok && aip.SDA() {
		return tapdata.MethodSDA, nil
	}
	return "", fail(StageInput, ReasonMethod)
}

// need returns the value of data object tag, failing input/missing when it
// is absent; with one length it must be exactly that long, with two within
// [min, max] (input/malformed).
func need(in *Input, tag string, length ...int) ([]byte, *Error) {
	b, ok := in.Data[tag]
	if !ok {
		return nil, failTag(StageInput, ReasonMissing, tag)
	}
	switch len(length) {
	case 1:
		if len(b) != length[0] {
			return nil, failTag(StageInput, ReasonMalformed, tag)
		}
	case 2:
		if len(b) < length[0] || len(b) > length[1] {
			return nil, failTag(StageInput, ReasonMalformed, tag)
		}
	}
	return b, nil
}

// open recovers a signed object with key into s.rec and runs the checks
// every Book 2 recovery shares: length, value below the modulus, trailer,
// header, format (any of formats), hash algorithm.
func open(s *scratch, stage Stage, key *rsaKey, sig []byte, formats ...byte) ([]byte, *Error) {
	if len(sig) != key.size {
		return nil, fail(stage, ReasonLength)
	}
	rec := s.rec[:key.size]
	if !key.recover(s, sig, rec) {
		return nil, fail(stage, ReasonRecovery)
	}
	if rec[len(rec)-1] != trailer {
		return nil, fail(stage, ReasonTrailer)
	}
	if rec[0] != header {
		return nil, fail(stage, ReasonHeader)
	}
	if bytes.IndexByte(formats, rec[1]) < 0 {
		return nil, fail(stage, ReasonFormat)
	}
	return rec, nil
}

// hashOK reports whether the hash field of rec (before the trailer) is the
// SHA-1 of rec[1:len-21] followed by parts.
func hashOK(s *scratch, rec []byte, parts ...[]byte) bool {
	n := len(rec)
	s.h.Reset()
	s.h.Write(rec[1 : n-hashLen-1])
	for _, p := range parts {
		s.h.Write(p)
	}
	sum := s.h.Sum(s.sum[:0])
	return bytes.Equal(sum, rec[n-hashLen-1:n-1])
}

// issuerCert is what an issuer public key certificate certifies, once its
// signature and structure have been checked. It is immutable and may be
// shared through the cache.
type issuerCert struct {
	id      [4]byte
	expiry  [2]byte
	serial  [3]byte
	modulus []byte
	key     rsaKey
}

// issuer recovers the issuer public key (EMV Book 2, 5.3 steps 1–7, 11,
// 12), through the cache when it has been recovered before. The checks
// that depend on the transaction (issuer identifier, expiry, revocation)
// are the caller's.
func (v *Verifier) issuer(s *scratch, in *Input, ca *caEntry) (*issuerCert, *Error) {
	cert, err := need(in, "90")
	if err != nil {
		return nil, err
	}
	exp, err := need(in, "9F32")
	if err != nil {
		return nil, err
	}
	rem, hasRem := in.Data["92"]
	if v.cache != nil {
		if c := v.cache.get(ca, cert, rem, exp); c != nil {
			return c, nil
		}
	}
	rec, err := open(s, StageIssuer, &ca.pub, cert, formatIssuer)
	if err != nil {
		return nil, err
	}
	if rec[11] != hashSHA1 {
		return nil, fail(StageIssuer, ReasonHashAlgorithm)
	}
	nca := ca.pub.size
	field := nca - issuerFixedLen
	ni := int(rec[13])
	if ni < MinModulusLen || ni > nca {
		return nil, fail(StageIssuer, ReasonKeyLength)
	}
	if err := checkRemainder(StageIssuer, ni, field, rem, hasRem); err != nil {
		return nil, err
	}
	if int(rec[14]) != len(exp) {
		return nil, fail(StageIssuer, ReasonExponentLength)
	}
	if !hashOK(s, rec, rem, exp) {
		return nil, fail(StageIssuer, ReasonHash)
	}
	if rec[12] != pkRSA {
		return nil, fail(StageIssuer, ReasonPKAlgorithm)
	}
	e := exponentValue(exp)
	if e == 0 {
		return nil, fail(StageIssuer, ReasonExponent)
	}
	mod := make([]byte, 0, ni)
	mod = append(mod, rec[15:15+min(ni, field)]...)
	if ni > field {
		mod = append(mod, rem...)
	}
	if mod[0] == 0 || mod[ni-1]&1 == 0 {
		return nil, fail(StageIssuer, ReasonKeyLength)
	}
	c := &issuerCert{modulus: mod, key: newRSAKey(mod, e)}
	copy(c.id[:], rec[2:6])
	copy(c.expiry[:], rec[6:8])
	copy(c.serial[:], rec[8:11])
	if v.cache != nil {
		v.cache.put(ca, cert, rem, exp, c)
	}
	return c, nil
}

// checkRemainder: a remainder is needed iff the key is longer than the
// certificate's key field, and then has exactly the missing length. An
// empty remainder counts as absent.
func checkRemainder(stage Stage, n, field int, rem []byte, present bool) *Error {
	if n > field {
		if !present || len(rem) != n-field {
			return fail(stage, ReasonRemainder)
		}
		return nil
	}
	if len(rem) != 0 {
		return fail(stage, ReasonRemainder)
	}
	return nil
}

// iccKey recovers the ICC public key (EMV Book 2, 6.4).
func iccKey(s *scratch, in *Input, issuer *rsaKey, static, panDigits []byte) (rsaKey, []byte, *Error) {
	cert, err := need(in, "9F46")
	if err != nil {
		return rsaKey{}, nil, err
	}
	exp, err := need(in, "9F47")
	if err != nil {
		return rsaKey{}, nil, err
	}
	rem, hasRem := in.Data["9F48"]
	rec, err := open(s, StageICC, issuer, cert, formatICC)
	if err != nil {
		return rsaKey{}, nil, err
	}
	if rec[17] != hashSHA1 {
		return rsaKey{}, nil, fail(StageICC, ReasonHashAlgorithm)
	}
	ni := issuer.size
	field := ni - iccFixedLen
	nic := int(rec[19])
	if nic < MinModulusLen || nic > ni {
		return rsaKey{}, nil, fail(StageICC, ReasonKeyLength)
	}
	if err := checkRemainder(StageICC, nic, field, rem, hasRem); err != nil {
		return rsaKey{}, nil, err
	}
	if int(rec[20]) != len(exp) {
		return rsaKey{}, nil, fail(StageICC, ReasonExponentLength)
	}
	if !hashOK(s, rec, rem, exp, static) {
		return rsaKey{}, nil, fail(StageICC, ReasonHash)
	}
	if rec[18] != pkRSA {
		return rsaKey{}, nil, fail(StageICC, ReasonPKAlgorithm)
	}
	e := exponentValue(exp)
	if e == 0 {
		return rsaKey{}, nil, fail(StageICC, ReasonExponent)
	}
	certPAN, ok := cnDigits(rec[2:12], s.certPAN[:0])
	if !ok || !bytes.Equal(certPAN, panDigits) {
		return rsaKey{}, nil, fail(StageICC, ReasonPANMismatch)
	}
	if err := checkExpiry(StageICC, [2]byte(rec[12:14]), in.Date); err != nil {
		return rsaKey{}, nil, err
	}
	mod := make([]byte, nic)
	if nic <= field {
		copy(mod, rec[21:21+nic])
	} else { // the key straddles the certificate and the remainder
		copy(mod[copy(mod, rec[21:21+field]):], rem)
	}
	if mod[0] == 0 || mod[nic-1]&1 == 0 {
		return rsaKey{}, nil, fail(StageICC, ReasonKeyLength)
	}
	return newRSAKey(mod, e), mod, nil
}

// verifySSAD checks the Signed Static Application Data (EMV Book 2, 5.4)
// and returns the Data Authentication Code.
func verifySSAD(s *scratch, in *Input, issuer *rsaKey, static []byte) ([]byte, *Error) {
	ssad, err := need(in, "93")
	if err != nil {
		return nil, err
	}
	rec, err := open(s, StageSSAD, issuer, ssad, formatSSAD)
	if err != nil {
		return nil, err
	}
	if rec[2] != hashSHA1 {
		return nil, fail(StageSSAD, ReasonHashAlgorithm)
	}
	if !hashOK(s, rec, static) {
		return nil, fail(StageSSAD, ReasonHash)
	}
	return bytes.Clone(rec[3:5]), nil
}

// openSDAD recovers Signed Dynamic Application Data and returns the ICC
// Dynamic Data after the shared checks (EMV Book 2, 6.5.2 steps 1–5).
func openSDAD(s *scratch, stage Stage, icc *rsaKey, sdad []byte, formats ...byte) (rec, dyn []byte, err *Error) {
	rec, err = open(s, stage, icc, sdad, formats...)
	if err != nil {
		return nil, nil, err
	}
	if rec[2] != hashSHA1 {
		return nil, nil, fail(stage, ReasonHashAlgorithm)
	}
	ldd := int(rec[3])
	if ldd > len(rec)-sdadFixedLen {
		return nil, nil, fail(stage, ReasonDynamicData)
	}
	dyn = rec[4 : 4+ldd]
	if len(dyn) < 1 || int(dyn[0]) < minDynNumberLen || int(dyn[0]) > maxDynNumberLen || int(dyn[0]) > len(dyn)-1 {
		return nil, nil, fail(stage, ReasonDynamicData)
	}
	return rec, dyn, nil
}

// verifySDAD checks DDA (EMV Book 2, 6.5) and fDDA (EMV Contactless Book
// C-3) signatures.
func verifySDAD(s *scratch, in *Input, method tapdata.Method, icc *rsaKey, res *Result) *Error {
	sdad, err := need(in, "9F4B")
	if err != nil {
		return err
	}
	formats := []byte{formatSDAD}
	var terminal [4][]byte
	if method == tapdata.MethodDDA {
		if len(in.DDOLData) == 0 {
			return failTag(StageInput, ReasonMissing, "9F49")
		}
		terminal[0] = in.DDOLData
	} else {
		formats = append(formats, formatVisaFDDA)
		// fDDA version 01 signs UN | amount | currency | 9F69; version
		// 00 (no 9F69) signs the UN alone.
		un, err := need(in, "9F37", 4)
		if err != nil {
			return err
		}
		terminal[0] = un
		if card, ok := in.Data["9F69"]; ok {
			if len(card) == 0 || card[0] != 0x01 {
				return failTag(StageSDAD, ReasonFDDAVersion, "9F69")
			}
			if terminal[1], err = need(in, "9F02", 6); err != nil {
				return err
			}
			if terminal[2], err = need(in, "5F2A", 2); err != nil {
				return err
			}
			terminal[3] = card
		}
	}
	rec, dyn, err := openSDAD(s, StageSDAD, icc, sdad, formats...)
	if err != nil {
		return err
	}
	if !hashOK(s, rec, terminal[:]...) {
		return fail(StageSDAD, ReasonHash)
	}
	res.ICCDynamicNumber = bytes.Clone(dyn[1 : 1+dyn[0]])
	return nil
}

// verifyCDA checks a CDA signature in the GENERATE AC response (EMV Book 2,
// 6.6.2).
func verifyCDA(s *scratch, in *Input, icc *rsaKey, res *Result) *Error {
	un, err := need(in, "9F37", 4)
	if err != nil {
		return err
	}
	resp, err := genACContent(in.GenACResponse)
	if err != nil {
		return err
	}
	// One pass over the response finds 9F4B and 9F27 and computes the
	// Transaction Data Hash Code: PDOL data, CDOL1 data, then the
	// response's data objects as received, all but 9F4B.
	var sdad, cid []byte
	s.h.Reset()
	s.h.Write(in.PDOLData)
	s.h.Write(in.CDOL1Data)
	if err := walkTLVs(resp, func(tag string, value, raw []byte) {
		switch tag {
		case "9F4B":
			sdad = value
			return
		case "9F27":
			cid = value
		}
		s.h.Write(raw)
	}); err != nil {
		return err
	}
	var tdhc [hashLen]byte
	s.h.Sum(tdhc[:0])
	if sdad == nil {
		return failTag(StageInput, ReasonMissing, "9F4B")
	}
	if len(cid) != 1 {
		return failTag(StageInput, ReasonMissing, "9F27")
	}
	rec, dyn, err := openSDAD(s, StageCDA, icc, sdad, formatSDAD)
	if err != nil {
		return err
	}
	l := int(dyn[0])
	if len(dyn) < 1+l+cdaDynFixedLen {
		return fail(StageCDA, ReasonDynamicData)
	}
	if !hashOK(s, rec, un) {
		return fail(StageCDA, ReasonHash)
	}
	res.ICCDynamicNumber = bytes.Clone(dyn[1 : 1+l])
	if dyn[1+l] != cid[0] {
		return fail(StageCDA, ReasonCIDMismatch)
	}
	if !bytes.Equal(tdhc[:], dyn[1+l+1+8:1+l+cdaDynFixedLen]) {
		return fail(StageCDA, ReasonTransactionDataHash)
	}
	res.Cryptogram = bytes.Clone(dyn[1+l+1 : 1+l+1+8])
	return nil
}

// checkExpiry checks a certificate expiration date MMYY (BCD): the
// certificate is valid through the last day of that month, judged on the
// transaction date.
func checkExpiry(stage Stage, mmyy [2]byte, date time.Time) *Error {
	month, ok1 := bcd(mmyy[0])
	yy, ok2 := bcd(mmyy[1])
	if !ok1 || !ok2 || month < 1 || month > 12 {
		return fail(stage, ReasonDate)
	}
	year := 2000 + yy
	if yy >= 50 {
		year = 1900 + yy
	}
	ty, tm, _ := date.Date()
	if ty*12+int(tm) > year*12+month {
		return fail(stage, ReasonExpired)
	}
	return nil
}

// afterDay reports whether date falls on a later calendar day than last.
func afterDay(date, last time.Time) bool {
	y1, m1, d1 := date.Date()
	y2, m2, d2 := last.Date()
	return y1*10000+int(m1)*100+d1 > y2*10000+int(m2)*100+d2
}

func bcd(b byte) (int, bool) {
	hi, lo := b>>4, b&0x0F
	if hi > 9 || lo > 9 {
		return 0, false
	}
	return int(hi)*10 + int(lo), true
}

// cnDigits appends the digits of a compressed numeric field (cn: BCD
// digits, right-padded with F) to dst. It reports false when a nibble
// before the padding is not a digit or a digit follows the padding.
func cnDigits(b, dst []byte) ([]byte, bool) {
	padded := false
	for _, c := range b {
		for _, n := range [2]byte{c >> 4, c & 0x0F} {
			switch {
			case n == 0x0F:
				padded = true
			case padded || n > 9:
				return dst, false
			default:
				dst = append(dst, n)
			}
		}
	}
	return dst, true
}

// prefixDigits reports whether the issuer identifier (3–8 digits,
// right-padded with F) matches the leftmost digits of the PAN.
func prefixDigits(id, pan []byte) bool {
	var buf [8]byte
	digits, ok := cnDigits(id, buf[:0])
	if !ok || len(digits) < 3 || len(digits) > len(pan) {
		return false
	}
	return bytes.Equal(digits, pan[:len(digits)])
}
