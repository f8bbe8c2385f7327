package acquirer

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/encoding"
	"github.com/moov-io/iso8583/field"
	"github.com/moov-io/iso8583/padding"
	"github.com/moov-io/iso8583/prefix"
)

// Spec is the one message specification of the acquirer link: ISO 8583:1987
// layout, ASCII MTI, 8-byte binary bitmaps (a secondary bitmap when a field
// above 64 is present), ASCII data elements with ASCII length prefixes, and
// field 55 as binary BER-TLV. docs/iso8583.md is its description for people;
// this table is its description for the code, and the two must agree.
var Spec = &iso8583.MessageSpec{
	Name: "faregate acquirer link (ISO 8583:1987, binary bitmap)",
	Fields: map[int]field.Field{
		0:  fixedN(4, "Message Type Indicator"),
		1:  field.NewBitmap(&field.Spec{Length: 8, Description: "Bitmap", Enc: encoding.Binary, Pref: prefix.Binary.Fixed}),
		2:  llvar(prefix.ASCII.LL, 19, "Primary Account Number"),
		3:  fixedN(6, "Processing Code"),
		4:  fixedN(12, "Amount, Transaction"),
		7:  fixedN(10, "Transmission Date and Time"),
		11: fixedN(6, "Systems Trace Audit Number"),
		12: fixedN(6, "Time, Local Transaction"),
		13: fixedN(4, "Date, Local Transaction"),
		14: fixedN(4, "Date, Expiration"),
		18: fixedN(4, "Merchant Type"),
		22: fixedN(3, "Point of Service Entry Mode"),
		23: fixedN(3, "Card Sequence Number"),
		25: fixedN(2, "Point of Service Condition Code"),
		32: llvar(prefix.ASCII.LL, 11, "Acquiring Institution Identification Code"),
		35: llvar(prefix.ASCII.LL, 37, "Track 2 Data"),
		37: fixedAN(12, "Retrieval Reference Number"),
		38: fixedAN(6, "Authorization Identification Response"),
		39: fixedAN(2, "Response Code"),
		41: fixedAN(8, "Card Acceptor Terminal Identification"),
		42: fixedAN(15, "Card Acceptor Identification Code"),
		43: fixedAN(40, "Card Acceptor Name/Location"),
		48: llvar(prefix.ASCII.LLL, 99, "Additional Data - Private"),
		49: fixedN(3, "Currency Code, Transaction"),
		55: field.NewBinary(&field.Spec{Length: 255, Description: "ICC Data", Enc: encoding.Binary, Pref: prefix.ASCII.LLL}),
		70: fixedN(3, "Network Management Information Code"),
		90: fixedN(42, "Original Data Elements"),
	},
}

// fixedN is a fixed-length numeric element, ASCII digits. It has no
// padder: the library's padders strip on unpack, which would turn MTI 0800
// into "800" and STAN 000123 into "123"; the code formats every numeric
// element to its full length itself.
func fixedN(n int, desc string) field.Field {
	return field.NewString(&field.Spec{Length: n, Description: desc, Enc: encoding.ASCII, Pref: prefix.ASCII.Fixed})
}

// fixedAN is a fixed-length alphanumeric element, ASCII, space-padded on the
// right when packed.
func fixedAN(n int, desc string) field.Field {
	return field.NewString(&field.Spec{Length: n, Description: desc, Enc: encoding.ASCII, Pref: prefix.ASCII.Fixed, Pad: padding.Right(' ')})
}

func llvar(p prefix.Prefixer, max int, desc string) field.Field {
	return field.NewString(&field.Spec{Length: max, Description: desc, Enc: encoding.ASCII, Pref: p})
}

// Message type indicators of the link.
const (
	MTIAuthRequest        = "0100"
	MTIAuthResponse       = "0110"
	MTIFinancialRequest   = "0200"
	MTIFinancialResponse  = "0210"
	MTIReversalRequest    = "0400"
	MTIReversalRepeat     = "0401"
	MTIReversalResponse   = "0410"
	MTINetworkRequest     = "0800"
	MTINetworkResponse    = "0810"
	networkSignOn         = "001"
	networkSignOff        = "002"
	networkEcho           = "301"
	processingPurchase    = "000000"
	processingRefund      = "200000"
	conditionNormal       = "00"
	conditionVerification = "51"
	// MCCTransit is merchant category code 4111, local and suburban commuter
	// passenger transportation.
	MCCTransit = "4111"
	// entryContactlessChip is field 22: "07" contactless chip, "2" the
	// terminal cannot accept a PIN.
	entryContactlessChip = "072"
)

// MaxMessage bounds one message on the wire. The 2-byte header allows 65535;
// no message of this spec comes near 1 KiB, so anything over MaxMessage is a
// broken or hostile peer and the connection is dropped before allocating.
const MaxMessage = 4096

// ErrFrame reports a length header outside 1..MaxMessage.
var ErrFrame = fmt.Errorf("acquirer: message length out of range (1..%d)", MaxMessage)

// ReadLength reads the 2-byte big-endian length header that precedes every
// message and checks it against MaxMessage.
func ReadLength(r io.Reader) (int, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(h[:]))
	if n == 0 || n > MaxMessage {
		return 0, ErrFrame
	}
	return n, nil
}

// WriteLength writes the 2-byte big-endian length header of a message of n
// bytes.
func WriteLength(w io.Writer, n int) (int, error) {
	if n <= 0 || n > MaxMessage {
		return 0, ErrFrame
	}
	var h [2]byte
	binary.BigEndian.PutUint16(h[:], uint16(n))
	return w.Write(h[:])
}
