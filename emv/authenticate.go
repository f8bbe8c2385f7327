package emv

// ODAMethod is a method of offline data authentication.
type ODAMethod string

const (
	MethodNone ODAMethod = "none"
	MethodSDA  ODAMethod = "SDA"
	MethodDDA  ODAMethod = "DDA"
	MethodFDDA ODAMethod = "fDDA"
	MethodCDA  ODAMethod = "CDA"
)

// ODAOutcome is the result of offline data authentication in a tap.
type ODAOutcome struct {
	Method ODAMethod `json:"method"`
	// Performed is false when the kernel had no Authenticator or the card
	// supports no method.
	Performed bool `json:"performed"`
	OK        bool `json:"ok"`
	// Stage and Reason name the failed check (oda's vocabulary) when OK is
	// false and Performed is true.
	Stage  string `json:"stage,omitempty"`
	Reason string `json:"reason,omitempty"`
	Err    error  `json:"-"`
	// Values recovered by the stages that succeeded.
	IssuerPKModulus  []byte `json:"-"`
	ICCPKModulus     []byte `json:"-"`
	ICCDynamicNumber []byte `json:"-"`
	// Cryptogram is the Application Cryptogram CDA recovered from the
	// signature; the kernel puts it in the tap as 9F26.
	Cryptogram []byte `json:"-"`
}

// Authenticator performs offline data authentication on what a tap
// gathered, with the method the kernel chose. The gate adapts the oda
// package to it; the kernel itself knows no certificates.
type Authenticator interface {
	Authenticate(t *Tap, method ODAMethod) ODAOutcome
}

// methodForQuick chooses ODA for kernels 3 and 7 after a cryptogram came
// with GPO: fDDA when the card signed (9F4B), nothing otherwise.
func methodForQuick(t *Tap) ODAMethod {
	if _, ok := t.Data["9F4B"]; ok && t.AIP[0]&0x20 != 0 {
		return MethodFDDA
	}
	return MethodNone
}

// methodForEMV chooses the strongest method card (AIP byte 1) and terminal
// (9F33 byte 3) both support: CDA, then DDA, then SDA.
func methodForEMV(aip [2]byte, caps [3]byte) ODAMethod {
	switch {
	case aip[0]&0x01 != 0 && caps[2]&0x08 != 0:
		return MethodCDA
	case aip[0]&0x20 != 0 && caps[2]&0x40 != 0:
		return MethodDDA
	case aip[0]&0x40 != 0 && caps[2]&0x80 != 0:
		return MethodSDA
	}
	return MethodNone
}

func (k *Kernel) authenticate(s *session, t *Tap, method ODAMethod) {
	if method == MethodNone || k.cfg.Authenticator == nil {
		t.ODA = ODAOutcome{Method: method}
		return
	}
	s.mark("kernel") // the kernel's own work since the last exchange
	t.ODA = k.cfg.Authenticator.Authenticate(t, method)
	t.ODA.Method = method
	t.ODA.Performed = true
	if _, ok := t.Data["9F26"]; !ok && t.ODA.OK && len(t.ODA.Cryptogram) == 8 {
		t.Data["9F26"] = t.ODA.Cryptogram
	}
	s.mark("oda")
}
