package oda_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/faregate/faregate/oda"
)

// Verify a published DDA card (proxmark3's dda_test.c) under the live
// Mastercard CA key 05, from a `faregate oda verify --input` file.
func ExampleVerifier_Verify() {
	keys, err := oda.LoadKeyStore("../testdata/capk/live.json")
	if err != nil {
		panic(err)
	}
	b, err := os.ReadFile("../testdata/oda/published/pm3-dda.json")
	if err != nil {
		panic(err)
	}
	in, err := oda.ParseInputJSON(b)
	if err != nil {
		panic(err)
	}
	v := oda.NewVerifier(keys, oda.Options{})
	res, err := v.Verify(in)
	fmt.Printf("%s %v %X\n", res.Method, err, res.ICCDynamicNumber)

	// The same card twenty years on: its issuer certificate has expired.
	in.Date = in.Date.AddDate(20, 0, 0)
	_, err = v.Verify(in)
	var e *oda.Error
	if errors.As(err, &e) {
		fmt.Println(e.Stage, e.Reason)
	}
	// Output:
	// DDA <nil> 7A33FB8C9546E1E7
	// issuer expired
}
