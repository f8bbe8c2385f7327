package cardsim

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"sort"

	"github.com/faregate/faregate/emv/tlv"
)

// app is one personalised application: encoded records, AFL, FCI, keys.
type app struct {
	spec    *Application
	aip     []byte
	afl     []byte
	fci     []byte
	pdol    []tlv.DOLEntry
	cdol1   []tlv.DOLEntry
	ddol    []tlv.DOLEntry
	records map[[2]int][]byte
	iccKey  *rsa.PrivateKey
	acKey   []byte
	atc     uint16
	badSig  bool
}

// personalise builds an application's records, AFL and FCI, and certifies
// its keys: issuer certificate from the CA key, ICC certificate (DDA, fDDA,
// CDA) or SSAD (SDA) over the static data to authenticate.
func personalise(p *Profile, spec *Application) (*app, error) {
	a := &app{spec: spec, aip: spec.AIP, records: map[[2]int][]byte{}, atc: spec.ATC, badSig: p.Faults.BadSignature}
	a.fci = fciOf(spec)
	recs := slices.Clone(spec.Records)
	pan := findData(recs, "5A")
	if pan == nil {
		pan = trackPAN(spec.GPOData["57"])
	}
	if pan == nil {
		pan = trackPAN(findData(recs, "57"))
	}
	acKey := sha256.Sum256(append([]byte("cardsim-ac|"), pan...))
	a.acKey = acKey[:]
	if err := a.parseDOLs(spec, recs); err != nil {
		return nil, err
	}
	sortRecords(recs)
	static, err := staticData(recs, spec, a.aip)
	if err != nil {
		return nil, err
	}
	oda, err := a.certify(p, spec, pan, static)
	if err != nil {
		return nil, err
	}
	if recs, err = placePKI(recs, spec.PKIRecord, oda); err != nil {
		return nil, err
	}
	if err := a.encodeRecords(recs, p.Faults.Override); err != nil {
		return nil, err
	}
	a.afl = buildAFL(recs)
	return a, nil
}

// fciOf is the FCI the application answers SELECT with.
func fciOf(spec *Application) []byte {
	fciProp := []tlv.TLV{{Tag: "50", Value: []byte(spec.Label)}}
	if spec.Priority > 0 {
		fciProp = append(fciProp, tlv.TLV{Tag: "87", Value: []byte{byte(spec.Priority)}})
	}
	if len(spec.PDOL) > 0 {
		fciProp = append(fciProp, tlv.TLV{Tag: "9F38", Value: spec.PDOL})
	}
	return mustEncode(tlv.TLV{Tag: "6F", TLVs: []tlv.TLV{{Tag: "84", Value: spec.AID}, {Tag: "A5", TLVs: fciProp}}})
}

// parseDOLs reads the PDOL, the CDOL1 (8C) and the DDOL (9F49, or the
// unpredictable number alone) the card asks for.
func (a *app) parseDOLs(spec *Application, recs []RecordSpec) error {
	var err error
	if a.pdol, err = tlv.ParseDOL(spec.PDOL); err != nil {
		return fmt.Errorf("pdol: %w", err)
	}
	if cdol := findData(recs, "8C"); cdol != nil {
		if a.cdol1, err = tlv.ParseDOL(cdol); err != nil {
			return fmt.Errorf("cdol1: %w", err)
		}
	}
	ddolBytes := findData(recs, "9F49")
	if ddolBytes == nil {
		ddolBytes = []byte{0x9F, 0x37, 0x04}
	}
	if a.ddol, err = tlv.ParseDOL(ddolBytes); err != nil {
		return fmt.Errorf("ddol: %w", err)
	}
	return nil
}

// staticData is the static data to authenticate: the ODA-flagged records
// (SFI 1–10: the value of template 70), then the AIP when the SDA tag list
// says 82. recs are sorted.
func staticData(recs []RecordSpec, spec *Application, aip []byte) ([]byte, error) {
	var static []byte
	for _, r := range recs {
		if r.ODA {
			body, err := encodeObjects(r.Data)
			if err != nil {
				return nil, fmt.Errorf("record %d/%d: %w", r.SFI, r.Record, err)
			}
			if r.SFI > 10 {
				body = mustEncode(tlv.TLV{Tag: "70", Value: body})
			}
			static = append(static, body...)
		}
	}
	if bytes.Equal(spec.PKI.SDATagList, []byte{0x82}) {
		static = append(static, aip...)
	}
	return static, nil
}

// placePKI puts the ODA data objects in the records: issuer objects in
// pki_record, ICC objects (or the SSAD) in the record after it, like real
// cards, since the two do not fit one record.
func placePKI(recs []RecordSpec, ref RecordRef, oda []DataObj) ([]RecordSpec, error) {
	if len(oda) == 0 {
		return recs, nil
	}
	if ref.SFI == 0 {
		return nil, errors.New("pki_record is needed for the ODA data objects")
	}
	split := slices.IndexFunc(oda, func(d DataObj) bool { return d.Tag == "9F46" || d.Tag == "93" })
	if split < 0 {
		split = len(oda)
	}
	for n, objs := range [][]DataObj{oda[:split], oda[split:]} {
		if len(objs) == 0 {
			continue
		}
		num := ref.Record + n
		i := slices.IndexFunc(recs, func(r RecordSpec) bool { return r.SFI == ref.SFI && r.Record == num })
		if i < 0 {
			recs = append(recs, RecordSpec{SFI: ref.SFI, Record: num})
			i = len(recs) - 1
		}
		if recs[i].ODA {
			return nil, errors.New("pki_record cannot be part of the static data it authenticates")
		}
		recs[i].Data = append(slices.Clone(recs[i].Data), objs...)
	}
	sortRecords(recs)
	return recs, nil
}

// encodeRecords encodes every record as template 70, with the profile's
// overriding values (a fault) put in after signing.
func (a *app) encodeRecords(recs []RecordSpec, override map[string]HexBytes) error {
	for _, r := range recs {
		objs := r.Data
		for tag, v := range override {
			for j := range objs {
				if objs[j].Tag == tag {
					objs = slices.Clone(objs)
					objs[j].Value = v
				}
			}
		}
		body, err := encodeObjects(objs)
		if err != nil {
			return fmt.Errorf("record %d/%d: %w", r.SFI, r.Record, err)
		}
		rec := mustEncode(tlv.TLV{Tag: "70", Value: body})
		if len(rec) > 256 {
			return fmt.Errorf("record %d/%d is %d bytes: more than a short APDU response carries", r.SFI, r.Record, len(rec))
		}
		a.records[[2]int{r.SFI, r.Record}] = rec
	}
	return nil
}

// certify returns the ODA data objects for the pki record.
func (a *app) certify(p *Profile, spec *Application, pan, static []byte) ([]DataObj, error) {
	k := spec.PKI
	if k.CAKey == "" {
		return nil, nil // a card without ODA
	}
	if pan == nil {
		return nil, errors.New("no PAN to certify")
	}
	ca, err := p.readKey(k.CAKey)
	if err != nil {
		return nil, err
	}
	issuer, err := p.readKey(k.IssuerKey)
	if err != nil {
		return nil, err
	}
	if len(k.CAIndex) != 1 {
		return nil, errors.New("pki.ca_index must be 1 byte")
	}
	issuerCert, issuerRem, err := issuerCertificate(ca, issuer, k, p.Faults.CorruptIssuerCert)
	if err != nil {
		return nil, fmt.Errorf("issuer certificate: %w", err)
	}
	objs := []DataObj{
		{Tag: "8F", Value: k.CAIndex},
		{Tag: "90", Value: issuerCert},
		{Tag: "9F32", Value: exponentBytes(issuer.E)},
	}
	if len(issuerRem) > 0 {
		objs = append(objs, DataObj{Tag: "92", Value: issuerRem})
	}
	if len(k.SDATagList) > 0 {
		objs = append(objs, DataObj{Tag: "9F4A", Value: k.SDATagList})
	}
	if k.ICCKey == "" {
		// SDA: the issuer signs the static data.
		ssad, err := signStatic(issuer, k.DAC, static, p.Faults.BadSignature)
		if err != nil {
			return nil, fmt.Errorf("signed static data: %w", err)
		}
		return append(objs, DataObj{Tag: "93", Value: ssad}), nil
	}
	icc, err := p.readKey(k.ICCKey)
	if err != nil {
		return nil, err
	}
	a.iccKey = icc
	certPAN := pan
	if p.Faults.WrongPANInCert {
		certPAN = bytes.Clone(pan)
		certPAN[len(certPAN)-1] ^= 0x11
	}
	iccCert, iccRem, err := iccCertificate(issuer, icc, k, certPAN, static, p.Faults.CorruptICCCert)
	if err != nil {
		return nil, fmt.Errorf("icc certificate: %w", err)
	}
	objs = append(objs, DataObj{Tag: "9F46", Value: iccCert}, DataObj{Tag: "9F47", Value: exponentBytes(icc.E)})
	if len(iccRem) > 0 {
		objs = append(objs, DataObj{Tag: "9F48", Value: iccRem})
	}
	return objs, nil
}

func (a *app) signDynamic(format byte, iccDynamicData, terminalData []byte) ([]byte, error) {
	if a.iccKey == nil {
		return nil, errNoKey
	}
	return signDynamic(a.iccKey, format, iccDynamicData, terminalData, a.badSig)
}

func exponentBytes(e int) []byte {
	if e == 3 {
		return []byte{0x03}
	}
	return []byte{byte(e >> 16), byte(e >> 8), byte(e)}
}

func findData(recs []RecordSpec, tag string) []byte {
	for _, r := range recs {
		for _, d := range r.Data {
			if d.Tag == tag {
				return d.Value
			}
		}
	}
	return nil
}

// trackPAN returns the PAN of track 2 data as compressed numeric.
func trackPAN(t2 []byte) []byte {
	if t2 == nil {
		return nil
	}
	s := hex.EncodeToString(t2)
	for i := range s {
		if s[i] == 'd' {
			digits := s[:i]
			if len(digits)%2 == 1 {
				digits += "f"
			}
			b, _ := hex.DecodeString(digits)
			return b
		}
	}
	return nil
}

func encodeObjects(objs []DataObj) ([]byte, error) {
	var out []byte
	for _, d := range objs {
		b, err := tlv.Encode(tlv.TLV{Tag: d.Tag, Value: d.Value})
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}

func sortRecords(recs []RecordSpec) {
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].SFI != recs[j].SFI {
			return recs[i].SFI < recs[j].SFI
		}
		return recs[i].Record < recs[j].Record
	})
}

// buildAFL writes one AFL entry per run of consecutive records of one SFI,
// starting a new entry wherever an ODA record follows a non-ODA one (an
// entry's ODA records come first).
func buildAFL(recs []RecordSpec) []byte {
	var afl []byte
	for i := 0; i < len(recs); {
		j, oda := i, 0
		for j < len(recs) && recs[j].SFI == recs[i].SFI && recs[j].Record == recs[i].Record+(j-i) {
			if recs[j].ODA {
				if oda != j-i {
					break // ODA after non-ODA: new entry
				}
				oda++
			}
			j++
		}
		afl = append(afl, byte(recs[i].SFI<<3), byte(recs[i].Record), byte(recs[j-1].Record), byte(oda))
		i = j
	}
	return afl
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func newSHA1() hash.Hash { return sha1.New() }
