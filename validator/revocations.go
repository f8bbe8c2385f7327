package validator

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/faregate/faregate/oda"
)

// ParseRevocations reads an issuer certificate revocation list:
// [{"rid":"A000000003","index":"92","serial":"BAD001"}] (docs/oda.md).
func ParseRevocations(b []byte) ([]oda.Revocation, error) {
	var list []struct {
		RID    string `json:"rid"`
		Index  string `json:"index"`
		Serial string `json:"serial"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("validator: revocation list: %w", err)
	}
	out := make([]oda.Revocation, len(list))
	for i, e := range list {
		rid, err1 := hex.DecodeString(e.RID)
		idx, err2 := hex.DecodeString(e.Index)
		ser, err3 := hex.DecodeString(e.Serial)
		if err1 != nil || err2 != nil || err3 != nil || len(rid) != 5 || len(idx) != 1 || len(ser) != 3 {
			return nil, fmt.Errorf("validator: revocation list entry %d: want rid of 5 bytes, index of 1 and serial of 3, in hex", i)
		}
		copy(out[i].RID[:], rid)
		out[i].Index = idx[0]
		copy(out[i].Serial[:], ser)
	}
	return out, nil
}
