// Package reader connects the gate to its contactless card reader.
//
// Two halves share the package:
//
//   - PC/SC (build tag pcsc, cgo and libpcsclite): List the readers pcscd
//     knows, Open one, WaitCard for a card in its field, and Transmit APDUs to
//     it through a Session, which satisfies the emv kernel's Transceiver. A
//     binary built without the tag keeps the same API; every call then
//     returns ErrNoPCSC, whose message says how to get PC/SC support.
//
//   - The vpcd bridge (every build, no cgo): PresentVPCD and ServeVPCD put a
//     software card (a VirtualCard) into a slot of the vsmartcard vpcd driver
//     of pcscd, so the real stack — scard, libpcsclite, pcscd, a reader
//     driver, a card — runs in tests and demos without hardware.
//
// A card pulled out of the field mid-transaction surfaces as ErrCardRemoved
// (matched with errors.Is) so the gate can tell a torn tap from a broken card.
// Every blocking call has a timeout, and a Reader re-establishes its PC/SC
// context by itself after pcscd restarts or the reader is unplugged and
// plugged back in.
package reader

import (
	"errors"
	"log/slog"
	"time"

	"github.com/faregate/faregate/emv"
)

// Errors callers act on. PC/SC failures wrap one of them (errors.Is), and
// keep the PC/SC return code in their message.
var (
	// ErrNoPCSC is returned by every PC/SC call of a binary built without
	// the pcsc build tag.
	ErrNoPCSC = errors.New("reader: built without PC/SC support: install libpcsclite-dev and pcscd " +
		"(Debian: apt-get install pcscd libpcsclite-dev), then build with -tags pcsc")
	// ErrNoService: pcscd is not running or stopped under us.
	ErrNoService = errors.New("reader: pcscd is not running")
	// ErrNoReader: no reader, or none of the requested name, is attached.
	ErrNoReader = errors.New("reader: no such reader")
	// ErrCardRemoved: the card left the field during a transaction (a torn
	// tap). Nothing the card said in this session may be acted on. It also
	// matches emv.ErrCardRemoved, so the kernel reports card_removed.
	ErrCardRemoved error = removedError{}
	// ErrCardComm: the card is present but does not answer properly (a
	// broken or unsupported card, not a torn tap).
	ErrCardComm = errors.New("reader: card communication failed")
	// ErrTimeout: a PC/SC call did not return within its timeout.
	ErrTimeout = errors.New("reader: timed out")
	// ErrSharing: another application holds the card exclusively.
	ErrSharing = errors.New("reader: card in exclusive use by another application")
	// ErrClosed: the Reader or Session was closed.
	ErrClosed = errors.New("reader: closed")
	// ErrBadAPDU: a command APDU shorter than a header or longer than an
	// extended APDU, or a response longer than the reader may return.
	ErrBadAPDU = errors.New("reader: malformed APDU")
)

// Limits of one APDU (ISO/IEC 7816-4 extended length).
const (
	MaxCommand  = 4 + 3 + 65535 + 2 // header, Lc, data, Le
	MaxResponse = 65536 + 2         // data, SW1 SW2
)

// Options configure Open. The zero value opens the first reader with the
// default timeouts.
type Options struct {
	// Name of the reader as pcscd lists it; "" means the first reader
	// listed, chosen again each time the reader list changes.
	Name string
	// CallTimeout bounds each PC/SC call other than a transmit and the
	// waits: establishing the context, listing readers, connecting,
	// status, disconnecting. Default 5 s.
	CallTimeout time.Duration
	// TransmitTimeout bounds one APDU exchange with the card (every
	// GET RESPONSE of a T=0 exchange counts as one). Default 2 s.
	TransmitTimeout time.Duration
	// RemovalGrace is how long a Session waits, after a transmit failed,
	// for pcscd to report that the card left the field before it calls the
	// failure ErrCardComm instead of ErrCardRemoved. pcscd polls serial
	// and virtual readers every 400 ms. Default 1 s.
	RemovalGrace time.Duration
	// Poll is the longest single GetStatusChange wait and the pause between
	// attempts to reach pcscd or the reader again. Default 500 ms.
	Poll time.Duration
	// Logger receives reconnects and recoveries; nil discards.
	Logger *slog.Logger
}

// The Session is what the kernel talks to.
var _ emv.Transceiver = (*Session)(nil)

// removedError is ErrCardRemoved: the reader's own sentinel, which the
// kernel also recognises as its emv.ErrCardRemoved.
type removedError struct{}

func (removedError) Error() string { return "reader: card removed" }

func (removedError) Is(target error) bool { return target == emv.ErrCardRemoved }
