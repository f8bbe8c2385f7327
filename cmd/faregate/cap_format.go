package main

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/faregate/faregate/capping"
)

// The formatters of faregate cap. Each appends one rider's output to a
// buffer; RateStream runs them on its rating goroutines, so they share
// nothing but pools.

// chargesFormatter: one CSV line per service day,
// token,service_day,taps,fares,charged.
func chargesFormatter(c capping.Currency) func([]byte, *capping.Rated) []byte {
	return func(b []byte, rt *capping.Rated) []byte {
		rd := rt.Rider
		for _, d := range rd.Days {
			b = csvField(b, rd.Token)
			b = append(b, ',')
			b, _ = d.Day.AppendText(b)
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(d.Taps), 10)
			b = append(b, ',')
			b = c.AppendFormat(b, d.Fares)
			b = append(b, ',')
			b = c.AppendFormat(b, d.Charged)
			b = append(b, '\n')
		}
		return b
	}
}

// csvField appends s as a CSV field, quoted when it must be (RFC 4180).
func csvField(b []byte, s string) []byte {
	quote := len(s) > 0 && (s[0] == ' ' || s[0] == '\t')
	for i := 0; i < len(s) && !quote; i++ {
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r'
	}
	if !quote {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// jsonFormatter: one rider object of the --json document (compact).
func jsonFormatter(c capping.Currency) func([]byte, *capping.Rated) []byte {
	return func(b []byte, rt *capping.Rated) []byte {
		rd := rt.Rider
		b = append(b, `{"token":`...)
		b = jsonString(b, rd.Token)
		b = append(b, `,"total":"`...)
		b = append(c.AppendFormat(b, rd.Total), `","legs":[`...)
		for i, l := range rd.Legs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"time":"`...)
			b = append(rt.Taps[l.Tap].AppendTime(b), `","mode":`...)
			b = jsonString(b, l.Mode)
			b = append(b, `,"fare":"`...)
			b = append(c.AppendFormat(b, l.Fare), `","charged":"`...)
			b = append(c.AppendFormat(b, l.Charged), `","capped_by":`...)
			b = jsonString(b, l.CappedBy)
			if l.Journey != capping.NoJourney {
				// Only legs of gated journeys: tap-only output is unchanged.
				b = append(b, `,"journey":"`...)
				b = append(append(b, l.Journey.String()...), `","station":`...)
				b = jsonString(b, rt.Taps[l.Tap].Stop)
			}
			b = append(b, '}')
		}
		b = append(b, `],"days":[`...)
		for i, d := range rd.Days {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"service_day":"`...)
			b, _ = d.Day.AppendText(b)
			b = append(b, `","charged":"`...)
			b = append(c.AppendFormat(b, d.Charged), `"}`...)
		}
		b = append(b, `],"settlements":[`...)
		for i, s := range rd.Settlements {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"run":"`...)
			b, _ = s.Run.AppendText(b)
			b = append(b, `","charged":"`...)
			b = append(c.AppendFormat(b, s.Charged), `"}`...)
		}
		b = append(b, `],"caps_reached":[`...)
		var ids [8]string
		for i, id := range rd.AppendCapsReached(ids[:0]) {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonString(b, id)
		}
		return append(b, "]}"...)
	}
}

// jsonString appends s as a JSON string exactly as encoding/json writes it
// (HTML-safe escapes, invalid UTF-8 as U+FFFD).
func jsonString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// tableFormatter: the rider's block of the table output.
func tableFormatter(c capping.Currency) func([]byte, *capping.Rated) []byte {
	return func(b []byte, rt *capping.Rated) []byte {
		rd := rt.Rider
		t := alignPool.Get().(*aligned)
		defer alignPool.Put(t)
		b = append(b, "rider "...)
		b = append(b, printable(rd.Token)...)
		b = append(b, ": total "...)
		b = append(c.AppendFormat(b, rd.Total), ' ')
		b = append(append(b, c.Code...), '\n')

		journeys := slices.ContainsFunc(rd.Legs, func(l capping.Leg) bool { return l.Journey != capping.NoJourney })
		if journeys {
			t.reset(10)
			t.row("  time", "service day", "mode", "category", "fare", "charged", "capped by", "transfer", "journey", "station")
		} else {
			t.reset(8)
			t.row("  time", "service day", "mode", "category", "fare", "charged", "capped by", "transfer")
		}
		for _, l := range rd.Legs {
			t.cellBytes(rt.Taps[l.Tap].AppendTime(append(t.scratch(), "  "...)))
			t.cellBytes(appendDate(t.scratch(), l.ServiceDay))
			t.cell(dash(l.Mode))
			t.cell(dash(l.Category))
			t.cellBytes(c.AppendFormat(t.scratch(), l.Fare))
			t.cellBytes(c.AppendFormat(t.scratch(), l.Charged))
			t.cell(dash(l.CappedBy))
			t.cell(dash(l.Transfer))
			if journeys {
				t.cell(dash(l.Journey.String()))
				t.cell(dash(rt.Taps[l.Tap].Stop))
			}
		}
		b = t.appendTo(b)

		t.reset(4)
		t.row("  service day", "taps", "fares", "charged")
		for _, d := range rd.Days {
			t.cellBytes(appendDate(append(t.scratch(), "  "...), d.Day))
			t.cellBytes(strconv.AppendInt(t.scratch(), int64(d.Taps), 10))
			t.cellBytes(c.AppendFormat(t.scratch(), d.Fares))
			t.cellBytes(c.AppendFormat(t.scratch(), d.Charged))
		}
		b = t.appendTo(b)

		t.reset(3)
		t.row("  settlement run", "new taps", "charged")
		for _, s := range rd.Settlements {
			t.cellBytes(appendDate(append(t.scratch(), "  "...), s.Run))
			t.cellBytes(strconv.AppendInt(t.scratch(), int64(s.Taps), 10))
			t.cellBytes(c.AppendFormat(t.scratch(), s.Charged))
		}
		b = t.appendTo(b)

		b = append(b, "  caps reached: "...)
		var ids [8]string
		reached := rd.AppendCapsReached(ids[:0])
		if len(reached) == 0 {
			b = append(b, "none"...)
		}
		for i, id := range reached {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = append(b, printable(id)...)
		}
		b = append(b, "; capping saved "...)
		b = c.AppendFormat(b, rd.Fares-rd.Total)
		return append(b, "\n\n"...)
	}
}

func appendDate(b []byte, d capping.Date) []byte {
	b, _ = d.AppendText(b)
	return b
}

// dash prints an empty cell as "-" and escapes what the input put in it
// (see printable).
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return printable(s)
}

// printable escapes control characters and invalid UTF-8 in text from the
// input (tokens, modes, categories) before it reaches a terminal: a token
// holding an escape sequence must not drive the operator's terminal.
func printable(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return printableSlow(s)
		}
	}
	return s
}

func printableSlow(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) || r == utf8.RuneError }) < 0 {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

// aligned lays out rows of cells in columns as text/tabwriter does with
// padding 2 and spaces (each column as wide as its widest cell plus two; the
// last cell of a row is not padded), without tabwriter's per-cell cost.
type aligned struct {
	ncol   int
	text   []byte
	ends   []int // end of each cell in text
	widths []int // width of each cell in runes
	tmp    []byte
}

var alignPool = sync.Pool{New: func() any { return new(aligned) }}

func (t *aligned) reset(ncol int) {
	t.ncol, t.text, t.ends = ncol, t.text[:0], t.ends[:0]
}

func (t *aligned) row(cells ...string) {
	for _, s := range cells {
		t.cell(s)
	}
}

func (t *aligned) cell(s string) {
	t.text = append(t.text, s...)
	t.ends = append(t.ends, len(t.text))
}

// scratch returns an empty buffer for building one cell with cellBytes.
func (t *aligned) scratch() []byte { return t.tmp[:0] }

func (t *aligned) cellBytes(b []byte) {
	t.text = append(t.text, b...)
	t.ends = append(t.ends, len(t.text))
	t.tmp = b[:0]
}

func (t *aligned) appendTo(b []byte) []byte {
	var widths [10]int // the widest table: legs with journeys
	t.widths = t.widths[:0]
	for i, start := 0, 0; i < len(t.ends); i++ {
		w := utf8.RuneCount(t.text[start:t.ends[i]])
		t.widths = append(t.widths, w)
		widths[i%t.ncol] = max(widths[i%t.ncol], w)
		start = t.ends[i]
	}
	for i, start := 0, 0; i < len(t.ends); i++ {
		b = append(b, t.text[start:t.ends[i]]...)
		start = t.ends[i]
		if col := i % t.ncol; col < t.ncol-1 {
			for pad := widths[col] + 2 - t.widths[i]; pad > 0; pad -= len(spaces) {
				b = append(b, spaces[:min(pad, len(spaces))]...)
			}
		} else {
			b = append(b, '\n')
		}
	}
	return b
}

const spaces = "                                "
