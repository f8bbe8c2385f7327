package emv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/emv/tlv"
	"github.com/faregate/faregate/oda"
)

// ErrTranscript is matched by every error of ParseTranscript.
var ErrTranscript = errors.New("emv: unusable transcript")

// ParseTranscript reads a transcript in its JSON form (docs/cli.md),
// strictly: a non-empty array of {"command", "response"} hex strings, no
// other field, each command at least the 4 bytes of a header, each
// response at least a status word.
func ParseTranscript(b []byte) (Transcript, error) {
	var tr Transcript
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tr); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTranscript, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the exchanges", ErrTranscript)
	}
	if len(tr) == 0 {
		return nil, fmt.Errorf("%w: no exchanges", ErrTranscript)
	}
	for i, e := range tr {
		if len(e.Command) < 4 {
			return nil, fmt.Errorf("%w: exchange %d: command of %d bytes", ErrTranscript, i, len(e.Command))
		}
		if len(e.Response) < 2 {
			return nil, fmt.Errorf("%w: exchange %d: response without status word", ErrTranscript, i)
		}
	}
	return tr, nil
}

// Replay runs the kernel over a recorded tap, so a recording is read
// exactly as the gate reads a card: same parsing, same status-word and
// 61xx/6Cxx handling, same rules. It selects the last application the
// transcript selects (a PSE or PPSE is a directory, not the application;
// a contact recording has no PPSE at all) and answers each command the
// kernel sends with the first recorded exchange after the last one used
// that is the same command (SELECT and READ RECORD by their parameters
// and data, others by instruction); exchanges the kernel has no use for
// (GET DATA, VERIFY …) are passed over. A command the transcript does not
// answer stops the tap with ReasonCommunication.
//
// The terminal data come from the recording, not from the kernel's
// configuration: the data of GET PROCESSING OPTIONS, INTERNAL
// AUTHENTICATE and GENERATE AC are taken from the recorded commands and
// split along the card's PDOL, DDOL and CDOL1 into the tap's terminal data
// objects (a later command's value wins); a recorded 9A sets the
// transaction date. Without 9A the date is Config.Now's.
//
// Like Tap, the returned Tap is never nil and holds what was gathered
// before an error.
func (k *Kernel) Replay(ctx context.Context, tr Transcript) (*Tap, error) {
	t := new(Tap)
	t.reset()
	t.Started = k.cfg.Now().In(k.cfg.Location)
	aid, at := lastApplicationSelect(tr)
	if at < 0 {
		return t, tapErr(StepSelect, ReasonNotPaymentCard, errors.New("the transcript selects no application"))
	}
	r := &replayer{tr: tr, next: at}
	begin := time.Now()
	s := &session{ctx: ctx, card: r, replay: r, record: k.cfg.Record, last: begin}
	err := k.process(s, t, []candidate{k.directCandidate(aid)})
	t.Duration = time.Since(begin)
	t.Timings = s.timings
	t.Transcript = s.transcript
	return t, err
}

// directCandidate is the application a replay selects by its AID: the
// gate's entry for it when there is one, else one on the kernel its RID
// implies.
func (k *Kernel) directCandidate(aid []byte) candidate {
	for _, app := range k.cfg.Applications {
		if bytes.HasPrefix(aid, app.AID) {
			return candidate{app: app, adf: aid, priority: 16}
		}
	}
	return candidate{app: Application{AID: aid, Kernel: defaultKernel(aid)}, adf: aid, priority: 16}
}

// lastApplicationSelect finds the last SELECT by name of an application
// (not of a PSE or PPSE directory) and returns its AID and index, or -1.
func lastApplicationSelect(tr Transcript) ([]byte, int) {
	at := -1
	var aid []byte
	for i, e := range tr {
		c := e.Command
		if len(c) < 4 || c[1] != 0xA4 || c[2] != 0x04 {
			continue
		}
		data, ok := commandData(c)
		if !ok || len(data) < 5 || len(data) > 16 || bytes.Contains(data, []byte("PAY.SYS.DDF01")) {
			continue
		}
		aid, at = data, i
	}
	return aid, at
}

// commandData returns the data field of a short command APDU: none for
// cases 1 and 2, else Lc bytes followed by at most Le.
func commandData(cmd []byte) ([]byte, bool) {
	if len(cmd) <= 5 {
		return nil, len(cmd) >= 4
	}
	lc := int(cmd[4])
	if lc == 0 || 5+lc > len(cmd) || len(cmd) > 5+lc+1 {
		return nil, false
	}
	return cmd[5 : 5+lc], true
}

// replayer answers the kernel's commands from a transcript.
type replayer struct {
	tr   Transcript
	next int // the first exchange not yet passed
}

var errNoAnswer = errors.New("emv: the transcript does not answer")

func (r *replayer) Transmit(_ context.Context, cmd []byte) ([]byte, error) {
	if i := r.find(cmd); i >= 0 {
		r.next = i + 1
		return bytes.Clone(r.tr[i].Response), nil
	}
	return nil, fmt.Errorf("%w %s", errNoAnswer, CommandName(cmd))
}

// find returns the index of the exchange that answers cmd, or -1. GET
// RESPONSE is answered only by the exchange right after the one it
// completes.
func (r *replayer) find(cmd []byte) int {
	if len(cmd) < 4 {
		return -1
	}
	if cmd[1] == 0xC0 {
		if r.next < len(r.tr) && sameCommand(r.tr[r.next].Command, cmd) {
			return r.next
		}
		return -1
	}
	for i := r.next; i < len(r.tr); i++ {
		if sameCommand(r.tr[i].Command, cmd) {
			return i
		}
	}
	return -1
}

// sameCommand reports whether the recorded command rec is the kernel's
// cmd: same instruction, and for SELECT, READ RECORD and GET RESPONSE the
// same parameters and data (Le aside). GET PROCESSING OPTIONS, INTERNAL
// AUTHENTICATE and GENERATE AC carry the recorded terminal data already
// (replayer.dolData); their parameters may differ with the recording
// terminal's choices.
func sameCommand(rec, cmd []byte) bool {
	if len(rec) < 4 || rec[1] != cmd[1] {
		return false
	}
	switch cmd[1] {
	case 0xA8, 0x88, 0xAE:
		return true
	}
	if rec[2] != cmd[2] || rec[3] != cmd[3] {
		return false
	}
	a, ok1 := commandData(rec)
	b, ok2 := commandData(cmd)
	return ok1 && ok2 && bytes.Equal(a, b)
}

// dolData is the data of the next recorded command with instruction ins:
// the terminal data the recording terminal sent for dol. Its values become
// the tap's terminal data.
func (r *replayer) dolData(t *Tap, ins byte, dol []byte) ([]byte, error) {
	i := r.next
	for ; i < len(r.tr) && (len(r.tr[i].Command) < 4 || r.tr[i].Command[1] != ins); i++ {
	}
	if i == len(r.tr) {
		return nil, fmt.Errorf("%w %s", errNoAnswer, insName(ins))
	}
	data, ok := commandData(r.tr[i].Command)
	if !ok {
		return nil, errors.New("recorded command length does not match Lc")
	}
	if ins == 0xA8 { // GET PROCESSING OPTIONS: the data is template 83
		tag, value, _, err := tlv.Split(data)
		if err != nil || tag != "83" {
			return nil, errors.New("recorded GET PROCESSING OPTIONS data is not a template 83")
		}
		data = value
	}
	entries, err := tlv.ParseDOL(dol)
	if err != nil {
		return nil, err
	}
	if n := tlv.DOLLength(entries); n != len(data) {
		return nil, fmt.Errorf("recorded command has %d bytes of data for the %d of the card's DOL", len(data), n)
	}
	return data, t.takeTerminalData(entries, data)
}

// takeTerminalData splits recorded DOL data into the tap's terminal data:
// a terminal data object takes the recorded value; a tag the dictionary
// does not know takes it when the card sent none; card data objects never
// come from what the terminal sent (a terminal fills the ones it lacks
// with zeros).
func (t *Tap) takeTerminalData(dol []tlv.DOLEntry, data []byte) error {
	off := 0
	for _, e := range dol {
		v := data[off : off+e.Length : off+e.Length]
		off += e.Length
		info, known := dictionary[e.Tag]
		if _, sent := t.Data[e.Tag]; known && info.Origin != OriginTerminal || !known && sent {
			continue
		}
		t.Data[e.Tag] = v
		if e.Tag == "9A" {
			d, err := tapdata.ParseDate(v)
			if err != nil {
				return err
			}
			t.Started = d
		}
	}
	return nil
}

// ODAInputFromTranscript replays tr (Replay, on the default terminal
// configuration) and returns what offline data authentication of the
// recorded tap needs, with the method left to the verifier
// (tapdata.MethodAuto): what `faregate oda verify --transcript` checks.
// The transaction date is the recorded 9A, else today. The kernel's
// verdict on the card does not stop it — a card that broke a rule or a
// transcript that ends early is verified as far as it was read — but a
// transcript that selects no application is an error (ErrTranscript).
func ODAInputFromTranscript(ctx context.Context, tr Transcript, today time.Time) (*oda.Input, error) {
	k, err := NewKernel(Config{Now: func() time.Time { return today }})
	if err != nil {
		return nil, err
	}
	t, err := k.Replay(ctx, tr)
	if t.AID == nil {
		return nil, fmt.Errorf("%w: no application SELECT answered: %w", ErrTranscript, err)
	}
	return t.ODAInput(tapdata.MethodAuto), nil
}
