package cardsim

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/emv/tapdata"
)

// Profile personalises a software card. It is the JSON of a file in
// testdata/cards/ (docs/cardsim.md describes every field).
type Profile struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// ATR in hex; empty means the PC/SC contactless ATR without historical
	// bytes (3B80800101).
	ATR string `json:"atr,omitempty"`
	// Applications the card holds, in PPSE directory order.
	Applications []Application `json:"applications"`
	// ExtraPPSE lists directory entries for applications the card does
	// not hold (selecting one answers 6A82).
	ExtraPPSE []PPSEEntry `json:"extra_ppse,omitempty"`
	Faults    Faults      `json:"faults"`
	// Expect says what a gate must conclude about this card; tests and
	// the demo compare against it.
	Expect Expectation `json:"expect"`

	fsys fs.FS  // where the profile's key paths resolve
	dir  string // directory of the profile in fsys
}

// Expectation is the outcome a correct gate reaches with this card.
type Expectation struct {
	Decision  string         `json:"decision"`             // "open" or "reject"
	Reason    string         `json:"reason"`               // decision reason, e.g. "ok", "oda_failed", "not_payment_card"
	ODAMethod tapdata.Method `json:"oda_method,omitempty"` // "fDDA", "CDA", "DDA", "SDA"
	ODAStage  string         `json:"oda_stage,omitempty"`  // oda stage of the failure
	ODAReason string         `json:"oda_reason,omitempty"` // oda reason of the failure
}

// PPSEEntry is a directory entry of the PPSE.
type PPSEEntry struct {
	AID      HexBytes `json:"aid"`
	Label    string   `json:"label,omitempty"`
	Priority int      `json:"priority,omitempty"`
	KernelID HexBytes `json:"kernel_id,omitempty"`
}

// Application is one payment application on the card.
type Application struct {
	PPSEEntry
	// Flow is "qvsdc" (kernels 3 and 7: cryptogram and fDDA with GET
	// PROCESSING OPTIONS) or "emv" (GENERATE AC, with CDA when the AIP
	// says so).
	Flow string   `json:"flow"`
	PDOL HexBytes `json:"pdol,omitempty"`
	AIP  HexBytes `json:"aip"`
	// GPOFormat is "77" (default) or "80" for the GET PROCESSING OPTIONS
	// response; format 80 carries only AIP and AFL.
	GPOFormat string `json:"gpo_format,omitempty"`
	// GPOData are extra data objects in a format 77 GPO response (track 2,
	// IAD, CTQ …), tag → hex value.
	GPOData map[string]HexBytes `json:"gpo_data,omitempty"`
	// Records the card holds; the AFL is built from them.
	Records []RecordSpec `json:"records"`
	// ODA objects (certificates, exponents, SSAD, SDA tag list) go in
	// this record, which is never flagged for ODA.
	PKIRecord RecordRef `json:"pki_record"`
	PKI       PKI       `json:"pki"`
	// SDADFormat is the signed data format of fDDA signatures, 05 or 95.
	SDADFormat string `json:"sdad_format,omitempty"`
	// DynamicNumber is "random" (8 bytes, default) or "atc" (the ATC, as
	// some Visa cards do).
	DynamicNumber string `json:"dynamic_number,omitempty"`
	// IAFormat is "80" (default) or "77" for INTERNAL AUTHENTICATE.
	IAFormat string `json:"ia_format,omitempty"`
	// IAD is the Issuer Application Data (9F10) the card returns with its
	// cryptograms.
	IAD HexBytes `json:"iad,omitempty"`
	// ATC is the initial Application Transaction Counter.
	ATC uint16 `json:"atc,omitempty"`
}

// RecordSpec is one record: its data objects in order.
type RecordSpec struct {
	SFI    int       `json:"sfi"`
	Record int       `json:"record"`
	ODA    bool      `json:"oda,omitempty"` // part of the static data to authenticate
	Data   []DataObj `json:"data"`
}

// RecordRef names a record.
type RecordRef struct {
	SFI    int `json:"sfi"`
	Record int `json:"record"`
}

// DataObj is one data object of a record. JSON: ["5A", "4761739001010010"].
type DataObj struct {
	Tag   string
	Value []byte
}

func (d *DataObj) UnmarshalJSON(b []byte) error {
	var pair [2]string
	if err := json.Unmarshal(b, &pair); err != nil {
		return fmt.Errorf("data object must be [TAG, HEX]: %w", err)
	}
	v, err := hex.DecodeString(pair[1])
	if err != nil {
		return fmt.Errorf("data object %s: %w", pair[0], err)
	}
	d.Tag, d.Value = strings.ToUpper(pair[0]), v
	return nil
}

func (d DataObj) MarshalJSON() ([]byte, error) {
	return json.Marshal([2]string{d.Tag, strings.ToUpper(hex.EncodeToString(d.Value))})
}

// PKI is the card's place in the test key hierarchy. Key paths are relative
// to the profile file.
type PKI struct {
	CAKey        string   `json:"ca_key"`
	CAIndex      HexBytes `json:"ca_index"`
	IssuerKey    string   `json:"issuer_key"`
	IssuerID     string   `json:"issuer_id"`     // leftmost PAN digits, 3 to 8
	IssuerExpiry string   `json:"issuer_expiry"` // MMYY
	IssuerSerial HexBytes `json:"issuer_serial"` // 3 bytes
	ICCKey       string   `json:"icc_key,omitempty"`
	ICCExpiry    string   `json:"icc_expiry,omitempty"`
	ICCSerial    HexBytes `json:"icc_serial,omitempty"`
	// SDATagList (9F4A) adds the AIP to the static data when "82".
	SDATagList HexBytes `json:"sda_tag_list,omitempty"`
	// DAC is the SDA Data Authentication Code (2 bytes).
	DAC HexBytes `json:"dac,omitempty"`
}

// Faults switches on the ways a card can be broken or hostile.
type Faults struct {
	CorruptIssuerCert bool `json:"corrupt_issuer_cert,omitempty"`
	CorruptICCCert    bool `json:"corrupt_icc_cert,omitempty"`
	// WrongPANInCert certifies the ICC key for another PAN.
	WrongPANInCert bool `json:"wrong_pan_in_cert,omitempty"`
	// BadSignature corrupts every dynamic signature (SDAD) or the SSAD.
	BadSignature bool `json:"bad_signature,omitempty"`
	// NoPPSE answers 6A82 to SELECT PPSE: not a payment card.
	NoPPSE bool `json:"no_ppse,omitempty"`
	// Malformed breaks a length in the response to this step ("select_ppse",
	// "select", "gpo", "read_record", "generate_ac", "internal_authenticate").
	Malformed emv.Step `json:"malformed,omitempty"`
	// StatusWords answers these steps with this status word (hex).
	StatusWords map[emv.Step]string `json:"status_words,omitempty"`
	// RemoveAfter leaves the field after this many APDUs (0: never).
	RemoveAfter int `json:"remove_after,omitempty"`
	// ChainResponses answers with 61xx and hands the data out by GET
	// RESPONSE, as a T=0 card does.
	ChainResponses bool `json:"chain_responses,omitempty"`
	// DemandLe answers 6Cxx once to the first command with data to return,
	// asking the terminal to resend with the exact Le.
	DemandLe bool `json:"demand_le,omitempty"`
	// Override replaces data objects after personalisation, tag → hex
	// (e.g. {"8F": "EF"} for an unknown CA index).
	Override map[string]HexBytes `json:"override,omitempty"`
}

// HexBytes is a byte string written as hex in JSON.
type HexBytes []byte

func (h HexBytes) MarshalText() ([]byte, error) {
	return []byte(strings.ToUpper(hex.EncodeToString(h))), nil
}

func (h *HexBytes) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("not hex: %w", err)
	}
	*h = v
	return nil
}

// LoadProfile reads and checks a profile file. Key paths in it are
// relative to its directory.
func LoadProfile(name string) (*Profile, error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, fmt.Errorf("cardsim: %w", err)
	}
	// Key paths may climb out of the profile's directory (../pki), so
	// resolve them from the file system root.
	root := filepath.VolumeName(abs) + string(filepath.Separator)
	rel, err := filepath.Rel(root, abs)
	if err != nil {
		return nil, fmt.Errorf("cardsim: %w", err)
	}
	return LoadProfileFS(os.DirFS(root), filepath.ToSlash(rel))
}

// LoadProfileFS reads and checks a profile from fsys (an embedded copy of
// testdata, say). Key paths are relative to the profile's directory.
func LoadProfileFS(fsys fs.FS, name string) (*Profile, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("cardsim: %w", err)
	}
	p, err := ParseProfile(b)
	if err != nil {
		return nil, fmt.Errorf("cardsim: %s: %w", path.Base(name), err)
	}
	p.fsys, p.dir = fsys, path.Dir(name)
	return p, nil
}

// ParseProfile decodes and checks a profile. Its key paths resolve against
// the working directory.
func ParseProfile(b []byte) (*Profile, error) {
	var p Profile
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	p.fsys, p.dir = os.DirFS("."), "."
	return &p, nil
}

// cardStep reports whether step is one a card answers (an APDU), so a
// fault can be attached to it.
func cardStep(step emv.Step) bool {
	switch step {
	case emv.StepSelectPPSE, emv.StepSelect, emv.StepGPO, emv.StepReadRecord, emv.StepGenerateAC, emv.StepInternalAuthenticate:
		return true
	}
	return false
}

func (p *Profile) check() error {
	if p.Name == "" {
		return errors.New("profile has no name")
	}
	if len(p.Applications) == 0 && !p.Faults.NoPPSE && len(p.ExtraPPSE) == 0 {
		return errors.New("profile has no application")
	}
	for i, a := range p.Applications {
		if len(a.AID) < 5 || len(a.AID) > 16 {
			return fmt.Errorf("application %d: aid must be 5 to 16 bytes", i)
		}
		if a.Flow != "qvsdc" && a.Flow != "emv" {
			return fmt.Errorf("application %X: flow must be qvsdc or emv", []byte(a.AID))
		}
		if len(a.AIP) != 2 {
			return fmt.Errorf("application %X: aip must be 2 bytes", []byte(a.AID))
		}
		for _, r := range a.Records {
			if r.SFI < 1 || r.SFI > 30 || r.Record < 1 || r.Record > 255 {
				return fmt.Errorf("application %X: record %d/%d out of range", []byte(a.AID), r.SFI, r.Record)
			}
		}
	}
	if p.Faults.Malformed != 0 && !cardStep(p.Faults.Malformed) {
		return fmt.Errorf("faults.malformed: unknown step %q", p.Faults.Malformed)
	}
	for step, sw := range p.Faults.StatusWords {
		if !cardStep(step) {
			return fmt.Errorf("faults.status_words: unknown step %q", step)
		}
		if b, err := hex.DecodeString(sw); err != nil || len(b) != 2 {
			return fmt.Errorf("faults.status_words.%s: want 4 hex digits", step)
		}
	}
	return nil
}

func (p *Profile) path(rel string) string {
	return path.Clean(path.Join(p.dir, rel))
}
