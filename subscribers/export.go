package subscribers

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// csvColumns are the fixed leading columns of an export, in order.
var csvColumns = []string{ColEmail, ColName, ColStatus, ColTimezone, ColSendHour, ColFrequency, ColTopics}

// CSVWriter writes subscribers as CSV one at a time, so an export of any
// size needs no more memory than one row. The header is written with the
// first row, or by Flush if there is none:
//
//	email,name,status,timezone,send_hour,frequency,topics,<attribute keys>
//
// status is the subscriber's status on the writer's list, or, when the
// list is "", every membership as "list:status" pairs joined by ';' in
// list-name order. topics are joined by ';'. send_hour is empty for -1
// (the list's schedule). Attribute columns are the keys given to
// NewCSVWriter; a subscriber's attributes under other keys are not written.
//
// Every cell that starts with = + - @ tab or CR gets a leading apostrophe
// (the OWASP advice against CSV formula injection), so a spreadsheet shows
// it as text instead of running it. The Importer removes that apostrophe
// again before = + - and @, so an export imports back to the same
// subscribers; a value that itself began with an apostrophe followed by
// one of those characters loses the apostrophe in that round trip.
type CSVWriter struct {
	w      *csv.Writer
	list   string
	keys   []string
	rec    []string
	header bool
	err    error
}

// NewCSVWriter returns a CSVWriter writing to w, giving each subscriber's
// status on list ("" for all lists), with one column per attribute key in
// the order given.
func NewCSVWriter(w io.Writer, list string, attrKeys []string) *CSVWriter {
	c := &CSVWriter{w: csv.NewWriter(w), list: list, keys: slices.Clone(attrKeys)}
	seen := make(map[string]bool, len(c.keys))
	for _, k := range c.keys {
		lk := strings.ToLower(strings.TrimSpace(k))
		switch {
		case lk == "" || slices.Contains(knownColumns, lk):
			c.err = fmt.Errorf("subscribers: export: attribute %q cannot be a column name", k)
		case seen[lk]:
			c.err = fmt.Errorf("subscribers: export: attribute %q given twice", k)
		}
		seen[lk] = true
	}
	return c
}

func (c *CSVWriter) writeHeader() error {
	if c.header || c.err != nil {
		return c.err
	}
	c.header = true
	c.rec = append(append(c.rec[:0], csvColumns...), c.keys...)
	for i := range c.rec {
		c.rec[i] = escapeCell(c.rec[i])
	}
	if err := c.w.Write(c.rec); err != nil {
		c.err = fmt.Errorf("subscribers: export: %w", err)
	}
	return c.err
}

// Write writes one subscriber, after the header if this is the first.
// Output is buffered: call Flush at the end. After an error, Write and
// Flush keep returning it.
func (c *CSVWriter) Write(s Subscriber) error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	hour := ""
	if s.SendHour >= 0 {
		hour = strconv.Itoa(s.SendHour)
	}
	c.rec = append(c.rec[:0],
		s.Email, s.Name, c.status(s), s.Timezone, hour, s.Frequency, strings.Join(s.Topics, ";"))
	for _, k := range c.keys {
		c.rec = append(c.rec, s.Attrs[k])
	}
	for i := range c.rec {
		c.rec[i] = escapeCell(c.rec[i])
	}
	if err := c.w.Write(c.rec); err != nil {
		c.err = fmt.Errorf("subscribers: export: %w", err)
	}
	return c.err
}

func (c *CSVWriter) status(s Subscriber) string {
	if c.list != "" {
		return string(s.StatusOn(c.list))
	}
	var b strings.Builder
	for i, l := range slices.Sorted(maps.Keys(s.Lists)) {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(l)
		b.WriteByte(':')
		b.WriteString(string(s.Lists[l].Status))
	}
	return b.String()
}

// Flush writes the header if no row was written, then any buffered data,
// and returns the first error met.
func (c *CSVWriter) Flush() error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	c.w.Flush()
	if err := c.w.Error(); err != nil && c.err == nil {
		c.err = fmt.Errorf("subscribers: export: %w", err)
	}
	return c.err
}

// formulaChars are the characters that make a spreadsheet read a cell
// starting with one as a formula (OWASP, CSV injection). WriteCSV escapes
// such cells and the Importer warns about them: one definition for both.
const formulaChars = "=+-@\t\r"

// FormulaPrefix returns the first byte of s and true when s starts with a
// character a spreadsheet reads as the start of a formula (= + - @ tab CR).
func FormulaPrefix(s string) (byte, bool) {
	if s != "" && strings.IndexByte(formulaChars, s[0]) >= 0 {
		return s[0], true
	}
	return 0, false
}

// escapeCell prefixes a cell a spreadsheet would read as a formula with an
// apostrophe.
func escapeCell(s string) string {
	if _, ok := FormulaPrefix(s); ok {
		return "'" + s
	}
	return s
}

// AttrKeys returns the sorted union of the subscribers' attribute keys:
// the attribute columns WriteCSV uses.
func AttrKeys(subs []Subscriber) []string {
	set := make(map[string]struct{})
	for _, s := range subs {
		for k := range s.Attrs {
			set[k] = struct{}{}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// WriteCSV writes subs as CSV (see CSVWriter) with a column for every
// attribute any of them has, in sorted order. list selects the status
// column ("" for all lists); it does not filter subs.
func WriteCSV(w io.Writer, subs []Subscriber, list string) error {
	c := NewCSVWriter(w, list, AttrKeys(subs))
	for _, s := range subs {
		if err := c.Write(s); err != nil {
			return err
		}
	}
	return c.Flush()
}

// JSONWriter writes subscribers as an indented JSON array one at a time,
// the same bytes WriteJSON produces. Call Close to end the array.
type JSONWriter struct {
	w   io.Writer
	n   int
	err error
}

// NewJSONWriter returns a JSONWriter writing to w.
func NewJSONWriter(w io.Writer) *JSONWriter { return &JSONWriter{w: w} }

// Write writes one subscriber as an element of the array.
func (j *JSONWriter) Write(s Subscriber) error {
	if j.err != nil {
		return j.err
	}
	b, err := json.MarshalIndent(s, "  ", "  ")
	if err != nil {
		j.err = fmt.Errorf("subscribers: export: %s: %w", s.Email, err)
		return j.err
	}
	sep := ",\n  "
	if j.n == 0 {
		sep = "[\n  "
	}
	j.n++
	if _, err := io.WriteString(j.w, sep); err != nil {
		j.err = fmt.Errorf("subscribers: export: %w", err)
		return j.err
	}
	if _, err := j.w.Write(b); err != nil {
		j.err = fmt.Errorf("subscribers: export: %w", err)
	}
	return j.err
}

// Close ends the array ("[]" if nothing was written). It does not close
// the underlying writer.
func (j *JSONWriter) Close() error {
	if j.err != nil {
		return j.err
	}
	end := "\n]\n"
	if j.n == 0 {
		end = "[]\n"
	}
	if _, err := io.WriteString(j.w, end); err != nil {
		j.err = fmt.Errorf("subscribers: export: %w", err)
		return j.err
	}
	j.err = errors.New("subscribers: export: JSONWriter is closed")
	return nil
}

// WriteJSON writes subs as an indented JSON array of Subscriber objects
// ("[]" when there are none). NewJSONImporter reads it back.
func WriteJSON(w io.Writer, subs []Subscriber) error {
	j := NewJSONWriter(w)
	for _, s := range subs {
		if err := j.Write(s); err != nil {
			return err
		}
	}
	return j.Close()
}
