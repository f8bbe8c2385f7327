package odatest_test

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/oda"
	"github.com/faregate/faregate/oda/odatest"
)

// A software card personalises its ODA data objects from a generated
// hierarchy, signs a DDA challenge, and a verifier in test mode accepts it.
func Example() {
	h, err := odatest.NewHierarchy(rand.Reader, odatest.HierarchyConfig{PAN: "4761739001010010"})
	if err != nil {
		panic(err)
	}
	// The static data to be authenticated: the ODA-flagged record values
	// (here given directly) and the AIP, since 9F4A is 82.
	aip := []byte{0x20, 0x00}
	static := append([]byte{0x5F, 0x24, 0x03, 0x30, 0x12, 0x31}, aip...)
	card, err := h.Personalise(static, [2]byte{0xDA, 0xC0})
	if err != nil {
		panic(err)
	}
	un := []byte{0x01, 0x23, 0x45, 0x67} // the terminal's DDOL data: 9F37
	sdad, err := odatest.SignDynamicData(h.ICC, odatest.FormatSDAD, odatest.DynamicNumber([]byte{0xCA, 0xFE}), un)
	if err != nil {
		panic(err)
	}

	keys, err := h.KeyStore()
	if err != nil {
		panic(err)
	}
	data := card.Objects()
	data["5A"] = []byte{0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x00, 0x10}
	data["82"] = aip
	data["9F4B"] = sdad
	v := oda.NewVerifier(keys, oda.Options{TestMode: true})
	res, err := v.Verify(&oda.Input{
		RID:           h.RID[:],
		Method:        tapdata.MethodDDA,
		Date:          time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC),
		Data:          data,
		StaticData:    static,
		StaticDataSet: true,
		DDOLData:      un,
	})
	fmt.Printf("%v %s %X\n", err, res.Method, res.ICCDynamicNumber)
	// Output: <nil> DDA CAFE
}
