package capping_test

import (
	"fmt"
	"strings"

	"github.com/faregate/faregate/capping"
)

// The seed's promise: single $1, day cap $10, week cap $25. Thirteen trips
// in a day cost $10.
func ExampleSettle() {
	rules, err := capping.ParseRules([]byte(`{
	  "currency": "USD", "time_zone": "America/New_York", "service_day_start": "04:00",
	  "fares": [{"id": "single", "price": "1.00"}],
	  "caps": [
	    {"id": "day", "amount": "10.00", "period": {"kind": "service_day"}},
	    {"id": "week", "amount": "25.00", "period": {"kind": "calendar_week"}}
	  ]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	var csv strings.Builder
	csv.WriteString("token,time\n")
	for h := 6; h < 19; h++ {
		fmt.Fprintf(&csv, "rider-1,2024-03-04T%02d:15:00-05:00\n", h)
	}
	taps, err := capping.ParseTaps(strings.NewReader(csv.String()), rules)
	if err != nil {
		fmt.Println(err)
		return
	}
	st, err := capping.Settle(rules, taps)
	if err != nil {
		fmt.Println(err)
		return
	}
	rd := st.Riders[0]
	fmt.Println(rd.Token, "pays", rules.Currency.Format(rd.Total), "for", len(rd.Legs), "trips; caps reached:", rd.CapsReached())
	last := rd.Legs[len(rd.Legs)-1]
	fmt.Println("last trip:", rules.Currency.Format(last.Charged), "capped by", last.CappedBy)
	// Output:
	// rider-1 pays 10.00 for 13 trips; caps reached: [day]
	// last trip: 0.00 capped by day
}

// A rules error names the line and the problem.
func ExampleParseRules_error() {
	_, err := capping.ParseRules([]byte("{\n  \"currency\": \"USD\",\n  \"time_zone\": \"UTC\",\n  \"caps\": [\n    {\"id\": \"day\", \"amount\": \"1.005\", \"period\": {\"kind\": \"service_day\"}}\n  ]\n}"))
	fmt.Println(err)
	// Output:
	// capping: rules line 5: caps[0] "day": amount: invalid amount: "1.005" has more than 2 decimal places for USD
}
