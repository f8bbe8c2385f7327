package emv

import (
	"errors"

	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/oda"
)

// ODAOutcome is the result of offline data authentication in a tap.
type ODAOutcome struct {
	Method tapdata.Method `json:"method"`
	// Performed is false when the kernel had no Authenticator or the card
	// supports no method.
	Performed bool `json:"performed"`
	OK        bool `json:"ok"`
	// Err says which stage and check failed when Performed and not OK.
	Err *oda.Error `json:"-"`
	// Recovered holds the values of the stages that succeeded (moduli,
	// ICC dynamic number, and under CDA the Application Cryptogram, which
	// the kernel puts in the tap as 9F26).
	Recovered oda.Result `json:"-"`
}

// Stage is the failed stage of Err, or "" when there is none.
func (o *ODAOutcome) Stage() oda.Stage {
	if o.Err == nil {
		return ""
	}
	return o.Err.Stage
}

// Reason is the failed check of Err, or "" when there is none.
func (o *ODAOutcome) Reason() oda.Reason {
	if o.Err == nil {
		return ""
	}
	return o.Err.Reason
}

// Authenticator performs offline data authentication on what a tap
// gathered: *oda.Verifier is one. The kernel itself knows no certificates
// and runs without one (tests, fuzzing, benchmarks of the flow alone).
type Authenticator interface {
	Verify(in *oda.Input) (*oda.Result, error)
}

var _ Authenticator = (*oda.Verifier)(nil)

// ODAInput is what offline data authentication of the tap needs: the
// selected application's RID, the transaction date, the data objects of
// card and terminal, the records and the command data the signatures
// cover. It shares the tap's storage. This is the one place a tap becomes
// an oda.Input, for the gate and for `faregate oda verify --transcript`.
func (t *Tap) ODAInput(method tapdata.Method) *oda.Input {
	return &oda.Input{
		RID:           t.AID[:min(5, len(t.AID))],
		Method:        method,
		Date:          t.Started,
		Data:          t.Data,
		Records:       t.Records,
		DDOLData:      t.DDOLData,
		PDOLData:      t.PDOLData,
		CDOL1Data:     t.CDOL1Data,
		GenACResponse: t.GenACResponse,
	}
}

// methodForQuick chooses ODA for kernels 3 and 7 after a cryptogram came
// with GPO: fDDA when the card signed (9F4B), nothing otherwise.
func methodForQuick(t *Tap) tapdata.Method {
	if _, ok := t.Data["9F4B"]; ok && t.AIP.DDA() {
		return tapdata.MethodFDDA
	}
	return tapdata.MethodNone
}

// Terminal Capabilities (9F33) byte 3: the terminal's ODA methods.
const (
	capSDA = 0x80
	capDDA = 0x40
	capCDA = 0x08
)

// methodForEMV chooses the strongest method card (AIP) and terminal (9F33
// byte 3) both support: CDA, then DDA, then SDA.
func methodForEMV(aip tapdata.AIP, caps [3]byte) tapdata.Method {
	switch {
	case aip.CDA() && caps[2]&capCDA != 0:
		return tapdata.MethodCDA
	case aip.DDA() && caps[2]&capDDA != 0:
		return tapdata.MethodDDA
	case aip.SDA() && caps[2]&capSDA != 0:
		return tapdata.MethodSDA
	}
	return tapdata.MethodNone
}

func (k *Kernel) authenticate(s *session, t *Tap, method tapdata.Method) {
	if method == tapdata.MethodNone || k.cfg.Authenticator == nil {
		t.ODA = ODAOutcome{Method: method}
		return
	}
	s.mark(StepKernel) // the kernel's own work since the last exchange
	res, err := k.cfg.Authenticator.Verify(t.ODAInput(method))
	t.ODA = outcome(method, res, err)
	if _, ok := t.Data["9F26"]; !ok && t.ODA.OK && len(t.ODA.Recovered.Cryptogram) == 8 {
		t.Data["9F26"] = t.ODA.Recovered.Cryptogram
	}
	s.mark(StepODA)
}

// outcome reports what the verifier returned.
func outcome(method tapdata.Method, res *oda.Result, err error) ODAOutcome {
	o := ODAOutcome{Method: method, Performed: true, OK: err == nil}
	if res != nil {
		o.Recovered = *res
	}
	if err != nil {
		o.Err = odaError(err)
	}
	return o
}

// odaError is err as an *oda.Error; an error of another kind (an
// Authenticator other than oda's) counts as unusable input. The common
// case, an *oda.Error itself, costs no allocation.
func odaError(err error) *oda.Error {
	if e, ok := err.(*oda.Error); ok {
		return e
	}
	var e *oda.Error
	if errors.As(err, &e) {
		return e
	}
	return &oda.Error{Stage: oda.StageInput, Reason: oda.ReasonMalformed, Err: err}
}
