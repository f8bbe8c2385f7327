package emv

import (
	"encoding/hex"
	"fmt"
)

// Instructions of the commands the kernel sends.
const (
	insSelect               = 0xA4
	insGPO                  = 0xA8
	insReadRecord           = 0xB2
	insGenerateAC           = 0xAE
	insInternalAuthenticate = 0x88
	insGetResponse          = 0xC0
)

// Command is a short command APDU (ISO 7816-4). EMV contactless never needs
// extended length.
type Command struct {
	CLA, INS, P1, P2 byte
	Data             []byte // at most 255 bytes
	// Le is the expected response length; NoLe sends none. 0 asks for up
	// to 256 bytes.
	Le int
}

// NoLe marks a command without an Le byte.
const NoLe = -1

// Bytes encodes the command. It fails when Data is longer than a short APDU
// allows.
func (c Command) Bytes() ([]byte, error) {
	return c.appendTo(make([]byte, 0, 6+len(c.Data)))
}

func (c Command) appendTo(b []byte) ([]byte, error) {
	if len(c.Data) > 255 {
		return nil, fmt.Errorf("emv: command data of %d bytes exceeds a short APDU", len(c.Data))
	}
	b = append(b, c.CLA, c.INS, c.P1, c.P2)
	if len(c.Data) > 0 {
		b = append(b, byte(len(c.Data)))
		b = append(b, c.Data...)
	}
	if c.Le >= 0 {
		b = append(b, byte(c.Le))
	}
	return b, nil
}

// PPSEName is the contactless Proximity Payment System Environment.
var PPSEName = []byte("2PAY.SYS.DDF01")

// SelectByName selects an application or directory by DF name.
func SelectByName(name []byte) Command {
	return Command{CLA: 0x00, INS: insSelect, P1: 0x04, P2: 0x00, Data: name, Le: 0}
}

// GetProcessingOptions sends the PDOL data in template 83.
func GetProcessingOptions(pdolData []byte) Command {
	data := make([]byte, 0, 2+len(pdolData))
	data = append(data, 0x83, byte(len(pdolData)))
	data = append(data, pdolData...)
	return Command{CLA: 0x80, INS: insGPO, Data: data, Le: 0}
}

// ReadRecord reads record rec of short file sfi.
func ReadRecord(sfi, rec byte) Command {
	return Command{CLA: 0x00, INS: insReadRecord, P1: rec, P2: sfi<<3 | 0x04, Le: 0}
}

// Reference control parameter (P1) of GENERATE AC.
const (
	ACTypeAAC  byte = 0x00
	ACTypeTC   byte = 0x40
	ACTypeARQC byte = 0x80
	ACCDA      byte = 0x10 // CDA signature requested
)

// GenerateAC asks for an application cryptogram.
func GenerateAC(p1 byte, cdolData []byte) Command {
	return Command{CLA: 0x80, INS: insGenerateAC, P1: p1, Data: cdolData, Le: 0}
}

// InternalAuthenticate asks for a DDA signature over the DDOL data.
func InternalAuthenticate(ddolData []byte) Command {
	return Command{CLA: 0x00, INS: insInternalAuthenticate, Data: ddolData, Le: 0}
}

// GetResponse fetches le bytes a card announced with 61xx.
func GetResponse(le byte) Command {
	return Command{CLA: 0x00, INS: insGetResponse, Le: int(le)}
}

// CommandName names a command APDU by its instruction, for transcripts,
// timings and errors.
func CommandName(apdu []byte) string {
	if len(apdu) < 4 {
		return "invalid"
	}
	if apdu[1] == insSelect && len(apdu) >= 5+len(PPSEName) && string(apdu[5:5+len(PPSEName)]) == string(PPSEName) {
		return "SELECT PPSE"
	}
	return insName(apdu[1])
}

func insName(ins byte) string {
	switch ins {
	case insSelect:
		return "SELECT"
	case insGPO:
		return "GET PROCESSING OPTIONS"
	case insReadRecord:
		return "READ RECORD"
	case insGenerateAC:
		return "GENERATE AC"
	case insInternalAuthenticate:
		return "INTERNAL AUTHENTICATE"
	case insGetResponse:
		return "GET RESPONSE"
	case 0xCA:
		return "GET DATA"
	}
	return "INS " + hex.EncodeToString([]byte{ins})
}
