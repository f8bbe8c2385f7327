package emv

import "fmt"

// Step is a step of a tap: where its time went (Timing) and where it
// stopped (TapError). Its text form ("select_ppse", "gpo" …) is the
// vocabulary of `faregate tap` (timings_us, error).
type Step uint8

// Steps, in the order of a tap.
const (
	StepSelectPPSE           Step = iota + 1 // SELECT of the PPSE directory
	StepSelect                               // final SELECT of the application
	StepTerminal                             // the terminal's own data (unpredictable number)
	StepGPO                                  // GET PROCESSING OPTIONS
	StepReadRecord                           // READ RECORD by the AFL, and the card's identity
	StepInternalAuthenticate                 // INTERNAL AUTHENTICATE (DDA)
	StepGenerateAC                           // GENERATE AC
	StepKernel                               // the kernel's own work before ODA
	StepODA                                  // offline data authentication
)

var stepNames = [...]string{
	StepSelectPPSE:           "select_ppse",
	StepSelect:               "select",
	StepTerminal:             "terminal",
	StepGPO:                  "gpo",
	StepReadRecord:           "read_record",
	StepInternalAuthenticate: "internal_authenticate",
	StepGenerateAC:           "generate_ac",
	StepKernel:               "kernel",
	StepODA:                  "oda",
}

func (s Step) String() string {
	if int(s) < len(stepNames) && stepNames[s] != "" {
		return stepNames[s]
	}
	return fmt.Sprintf("step(%d)", uint8(s))
}

// MarshalText writes the step's name.
func (s Step) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a step's name.
func (s *Step) UnmarshalText(b []byte) error {
	for i, n := range stepNames {
		if n != "" && n == string(b) {
			*s = Step(i)
			return nil
		}
	}
	return fmt.Errorf("emv: unknown step %q", b)
}
