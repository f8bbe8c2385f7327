package emv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// Response bounds: a short APDU response carries at most 256 bytes of data;
// a card announcing more through GET RESPONSE chains is cut off at
// maxResponseData.
const (
	maxResponse     = 256 + 2
	maxResponseData = 4096
	maxChain        = 16
)

// session is the APDU exchange of one tap: transport, status words, 61xx
// and 6Cxx handling, transcript and timings.
type session struct {
	last       time.Time // end of the previous step: timings cover parsing too
	ctx        context.Context
	card       Transceiver
	replay     *replayer // replaying a transcript (Kernel.Replay); nil on a live tap
	record     bool
	transcript Transcript
	timings    []Timing
	buf        [5 + 255 + 1]byte // command APDU encoding
}

// exchange sends cmd for step and returns the response data when the card
// answers 9000. Other status words are a *TapError with ReasonCardError
// wrapping a *StatusError.
func (s *session) exchange(step Step, cmd Command) ([]byte, error) {
	data, err := s.exchangeChained(step, cmd)
	s.mark(step)
	return data, err
}

// dolData is the data of a Data Object List for the command with
// instruction ins: built from the tap's data, or on a replay the recorded
// terminal's.
func (s *session) dolData(t *Tap, ins byte, dol []byte) ([]byte, error) {
	if s.replay != nil {
		return s.replay.dolData(t, ins, dol)
	}
	return buildDOL(dol, t.lookup)
}

// mark ends a step: the time since the previous mark (the card's answer and
// the kernel's work on the one before) is the step's. One clock read per
// step keeps timing cheap on the hot path.
func (s *session) mark(step Step) {
	now := time.Now()
	s.addTiming(step, now.Sub(s.last))
	s.last = now
}

func (s *session) addTiming(step Step, d time.Duration) {
	for i := range s.timings {
		if s.timings[i].Step == step {
			s.timings[i].Duration += d
			return
		}
	}
	s.timings = append(s.timings, Timing{Step: step, Duration: d})
}

func (s *session) exchangeChained(step Step, cmd Command) ([]byte, error) {
	resp, sw, err := s.transmit(step, cmd)
	if err != nil {
		return nil, err
	}
	if sw>>8 == 0x6C { // wrong Le: resend with the length the card wants
		cmd.Le = int(sw & 0xFF)
		if resp, sw, err = s.transmit(step, cmd); err != nil {
			return nil, err
		}
	}
	data := resp
	for i := 0; sw>>8 == 0x61; i++ { // more data: GET RESPONSE
		if i >= maxChain || len(data) > maxResponseData {
			return nil, tapErr(step, ReasonMalformed, errors.New("response chain too long"))
		}
		var more []byte
		if more, sw, err = s.transmit(step, GetResponse(byte(sw))); err != nil {
			return nil, err
		}
		data = append(data, more...)
	}
	if sw != 0x9000 {
		return nil, tapErr(step, ReasonCardError, &StatusError{SW: sw})
	}
	return data, nil
}

// transmit sends one APDU and splits the response into data and status word.
func (s *session) transmit(step Step, cmd Command) ([]byte, uint16, error) {
	apdu, err := cmd.appendTo(s.buf[:0])
	if err != nil {
		return nil, 0, tapErr(step, ReasonTerminalFailure, err)
	}
	if err := s.ctx.Err(); err != nil {
		return nil, 0, tapErr(step, ReasonCommunication, err)
	}
	resp, err := s.card.Transmit(s.ctx, apdu)
	if s.record {
		s.transcript = append(s.transcript, Exchange{Command: bytes.Clone(apdu), Response: bytes.Clone(resp)})
	}
	if err != nil {
		if errors.Is(err, ErrCardRemoved) {
			return nil, 0, tapErr(step, ReasonCardRemoved, err)
		}
		return nil, 0, tapErr(step, ReasonCommunication, err)
	}
	if len(resp) < 2 {
		return nil, 0, tapErr(step, ReasonMalformed, errors.New("response shorter than a status word"))
	}
	if len(resp) > maxResponse {
		return nil, 0, tapErr(step, ReasonMalformed, fmt.Errorf("response of %d bytes exceeds a short APDU", len(resp)))
	}
	n := len(resp) - 2
	return resp[:n:n], uint16(resp[n])<<8 | uint16(resp[n+1]), nil
}
