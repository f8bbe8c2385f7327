package capping

import (
	"time"
)

// stamp is an RFC 3339 instant together with everything needed to print it
// back exactly as it was written: the offset as given (+00:00 stays +00:00,
// Z stays Z), the case of T and Z and the number of fraction digits. It is
// 16 bytes, a quarter of a time.Time plus its text.
type stamp struct {
	sec  int64 // Unix seconds
	nsec int32
	off  int16 // offset east of UTC, minutes
	form uint8 // fraction digits (0..9) | stampLowerT | …
	set  bool  // parsed from text (the zero stamp was not)
}

const (
	stampDigits  = 0x0f // number of fraction digits
	stampLowerT  = 0x10 // 't' instead of 'T'
	stampZulu    = 0x20 // 'Z' (or 'z') instead of a numeric offset
	stampLowerZ  = 0x40 // 'z'
	stampMinus00 = 0x80 // "-00:00" (RFC 3339: offset unknown), kept as written
)

// parseStamp parses RFC 3339 (section 5.6): YYYY-MM-DDTHH:MM:SS[.frac]
// followed by Z or ±HH:MM; 't' and 'z' may be lower case (section 5.6 NOTE),
// the year is any of 0000 to 9999, the fraction has 1 to 9 digits. Leap
// seconds (:60) are refused, as Go's time package refuses them.
func parseStamp(b []byte) (stamp, bool) {
	var s stamp
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[13] != ':' || b[16] != ':' {
		return s, false
	}
	switch b[10] {
	case 'T':
	case 't':
		s.form |= stampLowerT
	default:
		return s, false
	}
	y, ok1 := digits(b[0:4])
	mo, ok2 := digits(b[5:7])
	d, ok3 := digits(b[8:10])
	h, ok4 := digits(b[11:13])
	mi, ok5 := digits(b[14:16])
	se, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || se > 59 {
		return s, false
	}
	rest := b[19:]
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		var frac int64
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			frac = frac*10 + int64(rest[n]-'0')
			n++
		}
		nd := n - 1
		if nd < 1 || nd > 9 {
			return s, false
		}
		for i := nd; i < 9; i++ {
			frac *= 10
		}
		s.nsec = int32(frac)
		s.form |= uint8(nd)
		rest = rest[n:]
	}
	off, form, ok := parseOffset(rest)
	if !ok {
		return s, false
	}
	s.form |= form
	s.off = int16(off)
	s.sec = daysFromCivil(y, mo, d)*86400 + h*3600 + mi*60 + se - int64(off)*60
	s.set = true
	return s, true
}

func parseOffset(b []byte) (minutes int, form uint8, ok bool) {
	if len(b) == 1 && (b[0] == 'Z' || b[0] == 'z') {
		form = stampZulu
		if b[0] == 'z' {
			form |= stampLowerZ
		}
		return 0, form, true
	}
	if len(b) != 6 || (b[0] != '+' && b[0] != '-') || b[3] != ':' {
		return 0, 0, false
	}
	oh, ok1 := digits(b[1:3])
	om, ok2 := digits(b[4:6])
	if !ok1 || !ok2 || oh > 23 || om > 59 {
		return 0, 0, false
	}
	m := int(oh*60 + om)
	if b[0] == '-' {
		if m == 0 {
			form = stampMinus00
		}
		m = -m
	}
	return m, form, true
}

func digits(b []byte) (int64, bool) {
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

func daysIn(y, m int64) int64 {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// time returns the instant (in UTC: the engine needs only the instant).
func (s stamp) time() time.Time { return time.Unix(s.sec, int64(s.nsec)).UTC() }

// appendText appends the stamp exactly as it was written.
func (s stamp) appendText(dst []byte) []byte {
	local := s.sec + int64(s.off)*60
	days := local / 86400
	secs := local % 86400
	if secs < 0 {
		secs += 86400
		days--
	}
	y, mo, d := civilFromDays(days)
	dst = append4(dst, y)
	dst = append(dst, '-')
	dst = append2(dst, mo)
	dst = append(dst, '-')
	dst = append2(dst, d)
	if s.form&stampLowerT != 0 {
		dst = append(dst, 't')
	} else {
		dst = append(dst, 'T')
	}
	dst = append2(dst, secs/3600)
	dst = append(dst, ':')
	dst = append2(dst, secs/60%60)
	dst = append(dst, ':')
	dst = append2(dst, secs%60)
	if nd := int(s.form & stampDigits); nd > 0 {
		dst = append(dst, '.')
		var buf [9]byte
		v := s.nsec
		for i := 8; i >= 0; i-- {
			buf[i] = byte('0' + v%10)
			v /= 10
		}
		dst = append(dst, buf[:nd]...)
	}
	switch {
	case s.form&stampZulu != 0 && s.form&stampLowerZ != 0:
		return append(dst, 'z')
	case s.form&stampZulu != 0:
		return append(dst, 'Z')
	}
	off := int64(s.off)
	if off < 0 || s.form&stampMinus00 != 0 {
		dst = append(dst, '-')
		off = -off
	} else {
		dst = append(dst, '+')
	}
	dst = append2(dst, off/60)
	dst = append(dst, ':')
	return append2(dst, off%60)
}

func append2(dst []byte, v int64) []byte {
	return append(dst, byte('0'+v/10), byte('0'+v%10))
}

func append4(dst []byte, v int64) []byte {
	return append(dst, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
}
