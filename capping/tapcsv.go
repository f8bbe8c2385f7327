package capping

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The taps file reader. It is written for speed (a city's day is millions
// of lines) and shared by ParseTaps and ReadTapTable, so that both accept
// exactly the same files. It reads RFC 4180 CSV as encoding/csv does (quoted
// fields, "" for a quote, CRLF, empty lines skipped) with one restriction: a
// quoted field must end on its line. No field of a taps file can hold a
// line break, and the restriction lets a file be cut at any line break and
// parsed in parallel.

// Columns of a taps file.
const (
	colToken = iota
	colTime
	colMode
	colCategory
	colFare
	colZones
	colReceived
	colDirection
	colStation
	numCols
)

var tapColumns = [numCols]string{"token", "time", "mode", "category", "fare", "zones", "received", "direction", "station"}

// columnAliases are the gates' names of columns (tap.Location.Role, Stop).
var columnAliases = map[string]int{"role": colDirection, "stop": colStation}

var (
	errBareQuote    = errors.New(`bare " in non-quoted field`)
	errQuote        = errors.New(`extraneous or missing " in quoted-field (a quoted field must end on its line)`)
	errFieldCount   = errors.New("wrong number of fields (must match the header)")
	errLineTooLong  = fmt.Errorf("line longer than %d bytes", maxTapLine)
	errEmptyTapFile = errors.New("empty file: expected a header row")
)

// splitLine splits one line (without its line break) into fields appended
// to dst. Quoted fields holding "" are copied; all others alias line.
func splitLine(dst [][]byte, line []byte) ([][]byte, error) {
	for {
		if len(line) > 0 && line[0] == '"' {
			f, rest, err := quotedField(line[1:])
			if err != nil {
				return dst, err
			}
			dst = append(dst, f)
			if rest == nil {
				return dst, nil
			}
			line = rest
			continue
		}
		i := bytes.IndexByte(line, ',')
		f := line
		if i >= 0 {
			f = line[:i]
		}
		if bytes.IndexByte(f, '"') >= 0 {
			return dst, errBareQuote
		}
		dst = append(dst, f)
		if i < 0 {
			return dst, nil
		}
		line = line[i+1:]
	}
}

// quotedField reads a quoted field whose opening quote is gone. rest is
// what follows the field's comma, nil at the end of the line.
func quotedField(b []byte) (field, rest []byte, err error) {
	var esc []byte
	for {
		i := bytes.IndexByte(b, '"')
		if i < 0 {
			return nil, nil, errQuote
		}
		if i+1 < len(b) && b[i+1] == '"' {
			esc = append(esc, b[:i+1]...)
			b = b[i+2:]
			continue
		}
		f := b[:i]
		if esc != nil {
			f = append(esc, f...)
		}
		switch {
		case i+1 == len(b):
			return f, nil, nil
		case b[i+1] == ',':
			return f, b[i+2:], nil
		}
		return nil, nil, errQuote
	}
}

// tapLayout is where each column sits in a row; -1 when absent.
type tapLayout struct {
	n   int
	col [numCols]int
}

func parseHeader(fields [][]byte, line int) (tapLayout, error) {
	lay := tapLayout{n: len(fields)}
	for i := range lay.col {
		lay.col[i] = -1
	}
	for i, h := range fields {
		name := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(string(h), "\ufeff")))
		c := -1
		for k, known := range tapColumns {
			if known == name {
				c = k
			}
		}
		if a, ok := columnAliases[name]; ok {
			c = a
		}
		if c < 0 {
			return lay, &TapsError{Line: line, Column: fmt.Sprintf("column %d", i+1), Err: fmt.Errorf("unknown column %q (known: %s)", h, strings.Join(tapColumns[:], ","))}
		}
		if lay.col[c] >= 0 {
			return lay, &TapsError{Line: line, Column: name, Err: errors.New("duplicate column")}
		}
		lay.col[c] = i
	}
	for _, req := range []int{colToken, colTime} {
		if lay.col[req] < 0 {
			return lay, &TapsError{Line: line, Column: tapColumns[req], Err: errors.New("required column missing")}
		}
	}
	return lay, nil
}

// tapRecord is one parsed row; its byte slices alias the row.
type tapRecord struct {
	token, mode, category []byte
	stop                  []byte
	role                  string // RoleOn, RoleOff or ""
	time, received        stamp
	fare                  Amount
	hasFare               bool
	zones                 [][]byte
	fields                [][]byte // scratch for splitLine
}

func (lay *tapLayout) get(rec *tapRecord, c int) []byte {
	if i := lay.col[c]; i >= 0 {
		return bytes.TrimSpace(rec.fields[i])
	}
	return nil
}

// parseRecord splits and checks one line into rec.
func (lay *tapLayout) parseRecord(rec *tapRecord, line []byte, n int, cur Currency) error {
	var err error
	rec.fields, err = splitLine(rec.fields[:0], line)
	if err != nil {
		return &TapsError{Line: n, Err: err}
	}
	if len(rec.fields) != lay.n {
		return &TapsError{Line: n, Err: errFieldCount}
	}
	fail := func(column string, err error) error {
		return &TapsError{Line: n, Column: column, Err: err}
	}
	rec.token = lay.get(rec, colToken)
	if len(rec.token) == 0 || len(rec.token) > maxToken {
		return fail("token", fmt.Errorf("must be 1 to %d bytes", maxToken))
	}
	if rec.time, err = parseTime(lay.get(rec, colTime)); err != nil {
		return fail("time", err)
	}
	rec.mode, rec.category = lay.get(rec, colMode), lay.get(rec, colCategory)
	if len(rec.mode) > maxName || len(rec.category) > maxName {
		return fail("mode", fmt.Errorf("mode and category must be at most %d bytes", maxName))
	}
	rec.fare, rec.hasFare = 0, false
	if s := lay.get(rec, colFare); len(s) > 0 {
		if rec.fare, err = cur.parseAmount(s); err != nil {
			return fail("fare", err)
		}
		rec.hasFare = true
	}
	if rec.zones, err = splitZones(rec.zones[:0], lay.get(rec, colZones)); err != nil {
		return fail("zones", err)
	}
	if rec.role, err = parseRole(lay.get(rec, colDirection)); err != nil {
		return fail("direction", err)
	}
	rec.stop = lay.get(rec, colStation)
	if len(rec.stop) > maxName {
		return fail("station", fmt.Errorf("must be at most %d bytes", maxName))
	}
	rec.received = stamp{}
	if s := lay.get(rec, colReceived); len(s) > 0 {
		if rec.received, err = parseTime(s); err != nil {
			return fail("received", err)
		}
	}
	return nil
}

func splitZones(dst [][]byte, s []byte) ([][]byte, error) {
	if len(s) == 0 {
		return dst, nil
	}
	if bytes.Count(s, []byte{';'}) >= maxZones {
		return dst, fmt.Errorf("more than %d zones", maxZones)
	}
	for {
		z, rest, more := bytes.Cut(s, []byte{';'})
		z = bytes.TrimSpace(z)
		if len(z) == 0 || len(z) > maxName {
			return dst, fmt.Errorf("zone names must be 1 to %d bytes, separated by ';'", maxName)
		}
		dst = append(dst, z)
		if !more {
			break
		}
		s = rest
	}
	return dst, nil
}

func parseTime(s []byte) (stamp, error) {
	if len(s) == 0 {
		return stamp{}, errors.New("missing")
	}
	st, ok := parseStamp(s)
	if !ok {
		return stamp{}, fmt.Errorf("%q is not RFC 3339 with an offset (2024-03-04T08:15:00+00:00)", clip(string(s)))
	}
	return st, nil
}

// eachLine calls fn with every non-empty line of block (whole lines, the
// last one possibly without its line break) and its number, counting from
// first. A carriage return before a line break is dropped.
func eachLine(block []byte, first int, fn func(line []byte, n int) error) error {
	n := first
	for len(block) > 0 {
		i := bytes.IndexByte(block, '\n')
		line := block
		if i >= 0 {
			line, block = block[:i], block[i+1:]
		} else {
			block = nil
		}
		if len(line) > maxTapLine {
			return &TapsError{Line: n, Err: errLineTooLong}
		}
		if k := len(line) - 1; k >= 0 && line[k] == '\r' {
			line = line[:k]
		}
		if len(line) > 0 {
			if err := fn(line, n); err != nil {
				return err
			}
		}
		n++
	}
	return nil
}

// blockReader cuts a stream into blocks of whole lines.
type blockReader struct {
	r     io.Reader
	carry []byte // start of a line not yet complete
	line  int    // number of the first line of the next block
	eof   bool
}

// next fills buf (whose capacity sets the block size) with whole lines and
// returns them with the number of their first line; io.EOF when done.
func (br *blockReader) next(buf []byte) ([]byte, int, error) {
	buf = append(buf[:0], br.carry...)
	br.carry = br.carry[:0]
	for !br.eof && len(buf) < cap(buf) {
		n, err := br.r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			br.eof = true
		} else if err != nil {
			return nil, 0, &TapsError{Line: br.line, Err: err}
		}
	}
	if len(buf) == 0 {
		return nil, 0, io.EOF
	}
	end := len(buf)
	if !br.eof {
		i := bytes.LastIndexByte(buf, '\n')
		if i < 0 {
			if len(buf) > maxTapLine+1 {
				return nil, 0, &TapsError{Line: br.line, Err: errLineTooLong}
			}
			// A line longer than the block: read on (blocks are far larger
			// than a line, so this happens only for tiny buffers).
			br.carry = append(br.carry, buf...)
			return br.next(make([]byte, 0, 2*cap(buf)))
		}
		end = i + 1
	}
	br.carry = append(br.carry, buf[end:]...)
	first := br.line
	br.line += bytes.Count(buf[:end], []byte{'\n'})
	return buf[:end], first, nil
}

// readHeader reads the header row: the first line that is not empty.
func (br *blockReader) readHeader() (tapLayout, error) {
	buf := make([]byte, 0, 2*maxTapLine+2)
	line := 1
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 && !br.eof {
			if len(buf) > maxTapLine+1 {
				return tapLayout{}, &TapsError{Line: line, Err: errLineTooLong}
			}
			n, err := br.r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err == io.EOF {
				br.eof = true
			} else if err != nil {
				return tapLayout{}, &TapsError{Line: line, Err: err}
			}
			continue
		}
		row, rest := buf, []byte(nil)
		if i >= 0 {
			row, rest = buf[:i], buf[i+1:]
		}
		if len(row) > maxTapLine {
			return tapLayout{}, &TapsError{Line: line, Err: errLineTooLong}
		}
		row = bytes.TrimSuffix(row, []byte{'\r'})
		if len(row) == 0 {
			if i < 0 {
				return tapLayout{}, &TapsError{Line: 1, Err: errEmptyTapFile}
			}
			buf = append(buf[:0], rest...)
			line++
			continue
		}
		br.carry = append(br.carry[:0], rest...)
		br.line = line + 1
		lay, err := headerOf(row, line)
		return lay, err
	}
}

func headerOf(line []byte, n int) (tapLayout, error) {
	fields, err := splitLine(nil, line)
	if err != nil {
		return tapLayout{}, &TapsError{Line: n, Err: err}
	}
	return parseHeader(fields, n)
}
