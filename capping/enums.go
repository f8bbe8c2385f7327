package capping

import (
	"fmt"
	"strings"
)

// The string enums of RULES.json. Each type reads and writes its names
// itself (encoding.TextUnmarshaler and TextMarshaler), from one table.

// enumName is one name of an enum.
type enumName[T ~uint8] struct {
	name string
	v    T
}

func unmarshalEnum[T ~uint8](names []enumName[T], text []byte, dst *T) error {
	for _, n := range names {
		if n.name == string(text) {
			*dst = n.v
			return nil
		}
	}
	list := make([]string, len(names))
	for i, n := range names {
		list[i] = n.name
	}
	alts := strings.Join(list[:len(list)-1], ", ") + " or " + list[len(list)-1]
	return fmt.Errorf("%q is not %s", clip(string(text)), alts)
}

func enumString[T ~uint8](names []enumName[T], v T) string {
	for _, n := range names {
		if n.v == v {
			return n.name
		}
	}
	return fmt.Sprintf("unknown(%d)", v)
}

func marshalEnum[T ~uint8](names []enumName[T], v T) ([]byte, error) {
	for _, n := range names {
		if n.v == v {
			return []byte(n.name), nil
		}
	}
	return nil, fmt.Errorf("capping: no name for value %d", v)
}

var periodKindNames = []enumName[PeriodKind]{
	{"service_day", ServiceDay}, {"calendar_week", CalendarWeek},
	{"calendar_month", CalendarMonth}, {"rolling_days", RollingDays},
}

func (k PeriodKind) String() string                { return enumString(periodKindNames, k) }
func (k PeriodKind) MarshalText() ([]byte, error)  { return marshalEnum(periodKindNames, k) }
func (k *PeriodKind) UnmarshalText(b []byte) error { return unmarshalEnum(periodKindNames, b, k) }

var anchorNames = []enumName[Anchor]{{"sliding", Sliding}, {"first_tap", FirstTap}}

func (a Anchor) String() string                { return enumString(anchorNames, a) }
func (a Anchor) MarshalText() ([]byte, error)  { return marshalEnum(anchorNames, a) }
func (a *Anchor) UnmarshalText(b []byte) error { return unmarshalEnum(anchorNames, b, a) }

var holidayFilterNames = []enumName[HolidayFilter]{
	{"include", HolidaysInclude}, {"exclude", HolidaysExclude}, {"only", HolidaysOnly},
}

func (h HolidayFilter) String() string                { return enumString(holidayFilterNames, h) }
func (h HolidayFilter) MarshalText() ([]byte, error)  { return marshalEnum(holidayFilterNames, h) }
func (h *HolidayFilter) UnmarshalText(b []byte) error { return unmarshalEnum(holidayFilterNames, b, h) }

var transferPriceNames = []enumName[TransferPrice]{
	{"free", TransferFree}, {"difference", TransferDifference},
	{"fixed_discount", TransferFixedDiscount}, {"percent_discount", TransferPercentDiscount},
}

func (p TransferPrice) String() string                { return enumString(transferPriceNames, p) }
func (p TransferPrice) MarshalText() ([]byte, error)  { return marshalEnum(transferPriceNames, p) }
func (p *TransferPrice) UnmarshalText(b []byte) error { return unmarshalEnum(transferPriceNames, b, p) }

var measuredFromNames = []enumName[MeasuredFrom]{{"paid_tap", FromPaidTap}, {"first_tap", FromFirstTap}}

func (m MeasuredFrom) String() string                { return enumString(measuredFromNames, m) }
func (m MeasuredFrom) MarshalText() ([]byte, error)  { return marshalEnum(measuredFromNames, m) }
func (m *MeasuredFrom) UnmarshalText(b []byte) error { return unmarshalEnum(measuredFromNames, b, m) }

var penaltyCapsNames = []enumName[PenaltyCaps]{
	{"outside", PenaltyOutside}, {"count", PenaltyCount}, {"bounded", PenaltyBounded},
}

func (p PenaltyCaps) String() string                { return enumString(penaltyCapsNames, p) }
func (p PenaltyCaps) MarshalText() ([]byte, error)  { return marshalEnum(penaltyCapsNames, p) }
func (p *PenaltyCaps) UnmarshalText(b []byte) error { return unmarshalEnum(penaltyCapsNames, b, p) }

var timeBandNames = []enumName[TimeBand]{{"any", AnyTime}, {"peak", Peak}, {"off_peak", OffPeak}}

func (b TimeBand) String() string                { return enumString(timeBandNames, b) }
func (b TimeBand) MarshalText() ([]byte, error)  { return marshalEnum(timeBandNames, b) }
func (b *TimeBand) UnmarshalText(t []byte) error { return unmarshalEnum(timeBandNames, t, b) }

var outcomeNames = []enumName[Outcome]{
	{"", NoJourney}, {"complete", JourneyComplete}, {"exit", JourneyExit},
	{"incomplete", JourneyIncomplete}, {"unmatched_exit", JourneyUnmatchedExit},
	{"same_station", JourneySameStation},
}

func (o Outcome) String() string               { return enumString(outcomeNames, o) }
func (o Outcome) MarshalText() ([]byte, error) { return marshalEnum(outcomeNames, o) }
