package capping

import (
	"fmt"
	"time"
)

// Date is a civil date (a service day), counted in days since 1970-01-01.
// Arithmetic on it is plain integer arithmetic: d+7 is a week later.
type Date int32

// DateOf returns the Date of a calendar date.
func DateOf(y int, m time.Month, d int) Date {
	return Date(daysFromCivil(int64(y), int64(m), int64(d)))
}

// ParseDate parses "YYYY-MM-DD".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrDate, s)
	}
	return DateOf(t.Date()), nil
}

// Civil returns year, month and day.
func (d Date) Civil() (int, time.Month, int) {
	y, m, dd := civilFromDays(int64(d))
	return int(y), time.Month(m), int(dd)
}

// Weekday returns the day of the week (1970-01-01 was a Thursday).
func (d Date) Weekday() time.Weekday {
	return time.Weekday(((int64(d)+4)%7 + 7) % 7)
}

// String formats the date as "YYYY-MM-DD".
func (d Date) String() string {
	var buf [16]byte
	b, _ := d.AppendText(buf[:0])
	return string(b)
}

// AppendText appends "YYYY-MM-DD" to b (encoding.TextAppender). Years
// outside 0000..9999 are printed as Go's time package prints them.
func (d Date) AppendText(b []byte) ([]byte, error) {
	y, m, dd := civilFromDays(int64(d))
	if y < 0 || y > 9999 {
		return fmt.Appendf(b, "%04d-%02d-%02d", y, m, dd), nil
	}
	b = append4(b, y)
	b = append(b, '-')
	b = append2(b, m)
	b = append(b, '-')
	return append2(b, dd), nil
}

// monthBounds returns the first and last day of d's calendar month.
func (d Date) monthBounds() (Date, Date) {
	y, m, _ := civilFromDays(int64(d))
	first := Date(daysFromCivil(y, m, 1))
	if m == 12 {
		y, m = y+1, 1
	} else {
		m++
	}
	return first, Date(daysFromCivil(y, m, 1)) - 1
}

// daysFromCivil and civilFromDays are Howard Hinnant's proleptic Gregorian
// algorithms: exact, branch-light, no time zone involved.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}
