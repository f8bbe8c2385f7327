package validator

import (
	"errors"

	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/oda"
)

// Authenticator adapts an oda.Verifier to the kernel: it hands the verifier
// what the tap gathered and reports the outcome in the kernel's terms.
type Authenticator struct {
	Verifier *oda.Verifier
}

var _ emv.Authenticator = Authenticator{}

// Authenticate implements emv.Authenticator.
func (a Authenticator) Authenticate(t *emv.Tap, method emv.ODAMethod) emv.ODAOutcome {
	in := &oda.Input{
		RID:           t.AID[:min(5, len(t.AID))],
		Method:        oda.Method(method),
		Date:          t.Started,
		Data:          t.Data,
		Records:       make([]oda.Record, len(t.Records)),
		DDOLData:      t.DDOLData,
		PDOLData:      t.PDOLData,
		CDOL1Data:     t.CDOL1Data,
		GenACResponse: t.GenACResponse,
	}
	for i, r := range t.Records {
		in.Records[i] = oda.Record{SFI: r.SFI, Number: r.Number, Data: r.Data}
	}
	res, err := a.Verifier.Verify(in)
	out := emv.ODAOutcome{OK: err == nil, Err: err}
	if res != nil {
		out.IssuerPKModulus = res.IssuerPKModulus
		out.ICCPKModulus = res.ICCPKModulus
		out.ICCDynamicNumber = res.ICCDynamicNumber
		out.Cryptogram = res.Cryptogram
	}
	var oe *oda.Error
	if errors.As(err, &oe) {
		out.Stage, out.Reason = string(oe.Stage), string(oe.Reason)
	} else if err != nil {
		out.Stage, out.Reason = "input", "error"
	}
	return out
}
