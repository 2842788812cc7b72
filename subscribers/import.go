package subscribers

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits applied to imported values.
const (
	MaxNameLen      = 200  // runes in a name, after folding spaces
	MaxTopicLen     = 100  // runes in one topic
	MaxAttrKeyLen   = 100  // runes in an attribute name
	MaxAttrValueLen = 1000 // runes in an attribute value
	maxQuoted       = 60   // runes of a value quoted in a rejection reason
)

// Known CSV columns. Any other column is an attribute. "status" is what
// WriteCSV writes; reading it back keeps an export's statuses (an
// unsubscribed person is not re-confirmed by re-importing an export).
const (
	ColEmail     = "email"
	ColName      = "name"
	ColTimezone  = "timezone"
	ColSendHour  = "send_hour"
	ColFrequency = "frequency"
	ColTopics    = "topics"
	ColStatus    = "status"
)

var knownColumns = []string{ColEmail, ColName, ColTimezone, ColSendHour, ColFrequency, ColTopics, ColStatus}

// ImportOptions says what an import does with every row.
type ImportOptions struct {
	Lists  []string  // lists to put each subscriber on (names are validated)
	Status Status    // status on those lists; default Confirmed (admin imports)
	Source string    // consent source; default "import"
	Now    time.Time // time for Created, Updated, Consent and memberships; default time.Now()
}

// Row is one imported record. A record that fails validation is not an
// error of Next: it comes back as a Row with Err set (a *RowError) and
// Subscriber holding what could be read (Email is set if it was valid).
type Row struct {
	Line       int        // CSV: physical line where the record starts (header = 1); JSON: 1-based array index
	Subscriber Subscriber // ID is empty: the store keeps an existing ID or assigns one
	Err        error      // nil if the row is valid
	// Given says which optional fields the row had a value for. The rest
	// of Subscriber holds defaults (SendHour -1, Frequency daily, the
	// import's consent), which an update of an existing subscriber should
	// not copy over stored values.
	Given Fields
	// Warnings are about values kept as they are that deserve a look:
	// CSV cells starting with a formula character. Set on valid rows only.
	Warnings []Warning
}

// Warning is about a value that was imported as it is but deserves a
// look, e.g. a CSV cell a spreadsheet would read as a formula.
type Warning struct {
	Line   int    // as Row.Line; the header's line for a column name
	Column string // column or field, e.g. "name", "header column 4"
	Value  string // the value, cut to 60 characters
	Reason string
}

// String returns `column "value": reason`.
func (w Warning) String() string {
	return fmt.Sprintf("%s %q: %s", w.Column, w.Value, w.Reason)
}

// Fields is a set of the optional fields of an import row.
type Fields uint16

// The optional fields of an import row.
const (
	GivenName Fields = 1 << iota
	GivenTimezone
	GivenSendHour
	GivenFrequency
	GivenTopics
	GivenStatus  // a status column or JSON "status"/"lists"
	GivenAttrs   // at least one non-empty attribute
	GivenConsent // JSON "consent" with a time
)

// Has reports whether all of x are in f.
func (f Fields) Has(x Fields) bool { return f&x == x }

// RowError says why a row was rejected.
type RowError struct {
	Column string // column or field at fault; "" when the whole row is
	Value  string // the offending value, cut to 60 characters
	Reason string
	Err    error // underlying cause, if any: ErrInvalidEmail, csv.ErrFieldCount, a *csv.ParseError
}

// Error returns `column "value": reason`, or the reason alone.
func (e *RowError) Error() string {
	if e.Column == "" {
		return e.Reason
	}
	return fmt.Sprintf("%s %q: %s", e.Column, e.Value, e.Reason)
}

// Unwrap returns the underlying cause.
func (e *RowError) Unwrap() error { return e.Err }

func rowErr(column, value, reason string, err error) *RowError {
	return &RowError{Column: column, Value: cut(value), Reason: reason, Err: err}
}

// cut shortens s to maxQuoted runes, marking the cut with "…".
func cut(s string) string {
	n := 0
	for i := range s {
		if n == maxQuoted {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// Report counts an import's outcome. The importer produces the rows; the
// caller fills the report as it stores them.
type Report struct {
	Added, Updated, Skipped int
	Rejected                []Row
	Warnings                []Warning // of the header and of the rows stored
}

// String summarizes the report on one line, e.g.
// "imported 120 (100 added, 20 updated), skipped 3 existing, rejected 2, 1 warning".
func (r Report) String() string {
	warn := "warnings"
	if len(r.Warnings) == 1 {
		warn = "warning"
	}
	return fmt.Sprintf("imported %d (%d added, %d updated), skipped %d existing, rejected %d, %d %s",
		r.Added+r.Updated, r.Added, r.Updated, r.Skipped, len(r.Rejected), len(r.Warnings), warn)
}

// Importer reads subscribers one row at a time from CSV or JSON without
// holding the input in memory. Rows are validated and normalized:
//
//   - email: NormalizeEmail; required. The same address twice in one input
//     rejects the second row, naming the first.
//   - name: surrounding space trimmed, inner runs of spaces folded to one,
//     at most MaxNameLen runes.
//   - timezone: an IANA name loadable by time.LoadLocation ("Local" is
//     refused); empty means UTC.
//   - send_hour: an integer 0–23; empty (or -1) means the list's schedule,
//     stored as -1.
//   - frequency: daily or weekly, any case; empty means daily.
//   - topics: split on ';', trimmed, lower-cased, empty and repeated ones
//     dropped, order kept.
//   - status: empty, a status applied to every list of ImportOptions.Lists,
//     or "list:status" pairs separated by ';'. The file wins over
//     ImportOptions.Status for the lists it names.
//   - any other column: an attribute, keyed by the lower-cased column name;
//     surrounding space trimmed; empty values are not stored.
//
// A control character (CR, LF, tab, NUL, NEL…) or U+2028/U+2029 anywhere
// in a name, topic, attribute or status, or invalid UTF-8, rejects the row:
// such values could end up in a header. Values beginning with a formula
// character (= + - @, see FormulaPrefix) are stored as they are:
// spreadsheet escaping is the exporter's job (WriteCSV). In CSV input each
// such email, name, topics, attribute value or attribute column name comes
// with a Warning (Row.Warnings, HeaderWarnings); the row is still imported.
// One exception makes exports round-trip quietly: a leading apostrophe
// followed by = + - or @, which is how WriteCSV escapes those cells, is
// removed in every column, and such a cell brings no warning. A formula
// value beginning with a tab or CR is rejected as a control character.
// JSON input brings no formula warnings: JSON values are not spreadsheet
// cells, and a JSON export re-imported would warn every time.
//
// An Importer is not safe for concurrent use.
type Importer struct {
	opts ImportOptions
	unit string // "line" or "element", for "first on line 3"
	seen map[string]int
	zone map[string]bool // time zone name -> loadable
	err  error           // sticky fatal error or io.EOF

	// CSV
	cr     *csv.Reader
	cols   []column
	line   int // start line of the last record read
	header []Warning

	// JSON
	dec   *json.Decoder
	index int
}

type column struct {
	name string // known column name or attribute key, lower-cased
	raw  string // header as written, trimmed
	attr bool
}

func (im *Importer) init(opts ImportOptions) error {
	if opts.Status == "" {
		opts.Status = Confirmed
	}
	if !opts.Status.Valid() {
		return fmt.Errorf("subscribers: import: unknown status %q", opts.Status)
	}
	if opts.Source == "" {
		opts.Source = "import"
	}
	if containsBad(opts.Source) || !utf8.ValidString(opts.Source) {
		return fmt.Errorf("subscribers: import: consent source %q contains control characters", opts.Source)
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	for _, l := range opts.Lists {
		if !listName.MatchString(l) {
			return fmt.Errorf("subscribers: import: list name %q: use 1–64 lower-case letters, digits, '-' or '_'", l)
		}
	}
	opts.Lists = slices.Clone(opts.Lists)
	im.opts = opts
	im.seen = make(map[string]int)
	im.zone = make(map[string]bool)
	return nil
}

// skipBOM returns a buffered reader positioned after a UTF-8 byte order
// mark, if r starts with one.
func skipBOM(r io.Reader) (*bufio.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	b, err := br.Peek(3)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("subscribers: import: %w", err)
	}
	if bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		br.Discard(3)
	}
	return br, nil
}

// NewCSVImporter reads the header row of a comma-separated file and
// returns an Importer for the rows after it. Header names are trimmed and
// matched without regard to case; a UTF-8 byte order mark is ignored. It
// fails if the input cannot be read, the header is not valid CSV, a name
// appears twice, a name is unusable as an attribute key, or there is no
// "email" column.
func NewCSVImporter(r io.Reader, opts ImportOptions) (*Importer, error) {
	im := &Importer{unit: "line"}
	if err := im.init(opts); err != nil {
		return nil, err
	}
	br, err := skipBOM(r)
	if err != nil {
		return nil, err
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // checked per row, so one bad row does not stop the stream
	cr.ReuseRecord = true
	header, err := cr.Read()
	switch {
	case err == io.EOF:
		return nil, errors.New("subscribers: import: empty input: want a header row with an \"email\" column")
	case err != nil:
		return nil, fmt.Errorf("subscribers: import: header: %w", err)
	}
	headerLine, _ := cr.FieldPos(0)
	im.cols = make([]column, len(header))
	where := make(map[string]int, len(header))
	hasEmail := false
	for i, h := range header {
		raw := unescapeFormula(strings.TrimSpace(h))
		name := strings.ToLower(raw)
		c := column{name: name, raw: raw}
		if name == "" {
			im.cols[i] = c // unnamed: its cells must be empty
			continue
		}
		if containsBad(raw) || !utf8.ValidString(raw) {
			return nil, fmt.Errorf("subscribers: import: header: column %d name %q contains control characters or invalid UTF-8", i+1, cut(raw))
		}
		if j, dup := where[name]; dup {
			return nil, fmt.Errorf("subscribers: import: header: column %q appears twice (columns %d and %d)", raw, j+1, i+1)
		}
		where[name] = i
		if !slices.Contains(knownColumns, name) {
			if utf8.RuneCountInString(name) > MaxAttrKeyLen {
				return nil, fmt.Errorf("subscribers: import: header: column %d name %q is longer than %d characters", i+1, cut(raw), MaxAttrKeyLen)
			}
			c.attr = true
			if w, ok := formulaWarning(fmt.Sprintf("header column %d", i+1), strings.TrimSpace(h), name); ok {
				w.Line = headerLine
				im.header = append(im.header, w)
			}
		}
		hasEmail = hasEmail || name == ColEmail
		im.cols[i] = c
	}
	if !hasEmail {
		hint := ""
		if len(header) == 1 && strings.Contains(header[0], ";") {
			hint = " (the header holds ';': only ',' separates columns)"
		}
		return nil, fmt.Errorf("subscribers: import: header has no %q column%s; found %q", ColEmail, hint, cut(strings.Join(header, ",")))
	}
	im.cr = cr
	return im, nil
}

// HeaderWarnings returns the warnings about the CSV header: attribute
// column names that start with a formula character. Nil for JSON.
func (im *Importer) HeaderWarnings() []Warning { return slices.Clone(im.header) }

// NewJSONImporter reads the opening of a JSON array of objects and returns
// an Importer for its elements, decoded one at a time. Fields are those of
// the CSV columns ("email", "name", "timezone", "send_hour" as a number or
// string, "frequency", "topics" as an array or a ';'-separated string,
// "status"), plus "attrs" (an object of strings), "lists" (list name to
// status, or to {"status": …, "since": …} as WriteJSON writes it) and
// "consent" ({"time", "ip", "source"}, kept when it has a time). "id",
// "created" and "updated" are read and ignored: the store owns them. Any
// other field becomes an attribute: strings as they are, numbers and
// booleans as their JSON text; null is ignored; objects and arrays reject
// the row. Field names are matched without regard to case.
func NewJSONImporter(r io.Reader, opts ImportOptions) (*Importer, error) {
	im := &Importer{unit: "element"}
	if err := im.init(opts); err != nil {
		return nil, err
	}
	br, err := skipBOM(r)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(br)
	dec.UseNumber()
	tok, err := dec.Token()
	switch {
	case err == io.EOF:
		return nil, errors.New("subscribers: import: empty input: want a JSON array of objects")
	case err != nil:
		return nil, fmt.Errorf("subscribers: import: JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("subscribers: import: JSON: want an array of objects, found %v", tok)
	}
	im.dec = dec
	return im, nil
}

// Next returns the next row. It returns io.EOF after the last row. A row
// that fails validation is returned with Row.Err set and a nil error; an
// error from Next means the input cannot be read any further (an I/O error,
// or malformed JSON) and is returned again by later calls.
func (im *Importer) Next() (Row, error) {
	if im.err != nil {
		return Row{}, im.err
	}
	var row Row
	var err error
	if im.cr != nil {
		row, err = im.nextCSV()
	} else {
		row, err = im.nextJSON()
	}
	if err != nil {
		im.err = err
	}
	return row, err
}

// fields is one record before validation, from either format.
type fields struct {
	email, name, timezone, sendHour, frequency, status string
	topics                                             []string
	topicsCol                                          string
	attrs                                              []kv
	lists                                              map[string]Membership // JSON "lists"
	consent                                            *Consent              // JSON "consent"
}

type kv struct{ key, value string }

// given reports which optional fields hold a value.
func (f fields) given() Fields {
	var g Fields
	set := func(ok bool, x Fields) {
		if ok {
			g |= x
		}
	}
	nonEmpty := func(s string) bool { return strings.TrimSpace(s) != "" }
	set(nonEmpty(f.name), GivenName)
	set(nonEmpty(f.timezone), GivenTimezone)
	set(nonEmpty(f.sendHour), GivenSendHour)
	set(nonEmpty(f.frequency), GivenFrequency)
	set(slices.ContainsFunc(f.topics, nonEmpty), GivenTopics)
	set(nonEmpty(f.status) || len(f.lists) > 0, GivenStatus)
	set(slices.ContainsFunc(f.attrs, func(a kv) bool { return nonEmpty(a.value) }), GivenAttrs)
	set(f.consent != nil && !f.consent.Time.IsZero(), GivenConsent)
	return g
}

func (im *Importer) nextCSV() (Row, error) {
	for {
		rec, err := im.cr.Read()
		if err == io.EOF {
			return Row{}, io.EOF
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return Row{Line: pe.StartLine, Err: &RowError{Reason: "CSV syntax: " + pe.Err.Error() + fmt.Sprintf(" (line %d, column %d)", pe.Line, pe.Column), Err: pe}}, nil
		}
		if err != nil {
			return Row{}, fmt.Errorf("subscribers: import: reading CSV after line %d: %w", im.line, err)
		}
		line, _ := im.cr.FieldPos(0)
		im.line = line
		if len(rec) != len(im.cols) {
			if allEmpty(rec) {
				continue
			}
			return Row{Line: line, Err: &RowError{
				Reason: fmt.Sprintf("has %d fields, the header has %d", len(rec), len(im.cols)),
				Err:    csv.ErrFieldCount,
			}}, nil
		}
		if allEmpty(rec) {
			continue // a row of commas, as spreadsheets leave behind
		}
		var f fields
		var bad *RowError
		for i, c := range im.cols {
			v := rec[i]
			switch c.name {
			case ColEmail:
				f.email = v
			case ColName:
				f.name = v
			case ColTimezone:
				f.timezone = v
			case ColSendHour:
				f.sendHour = v
			case ColFrequency:
				f.frequency = v
			case ColTopics:
				f.topicsCol = ColTopics
				f.topics = strings.Split(v, ";")
			case ColStatus:
				f.status = v
			case "":
				if strings.TrimSpace(v) != "" && bad == nil {
					bad = rowErr(fmt.Sprintf("column %d", i+1), v, "has a value but no name in the header", nil)
				}
			default:
				f.attrs = append(f.attrs, kv{c.name, v})
			}
		}
		sub, rerr := im.build(line, f)
		if rerr == nil && bad != nil {
			rerr = bad
		}
		row := Row{Line: line, Subscriber: sub, Given: f.given()}
		if rerr != nil {
			row.Err = rerr
		} else {
			row.Warnings = formulaWarnings(line, f, sub)
		}
		return row, nil
	}
}

func allEmpty(rec []string) bool {
	for _, v := range rec {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

func (im *Importer) nextJSON() (Row, error) {
	if !im.dec.More() {
		tok, err := im.dec.Token() // the closing ']'
		if err != nil {
			return Row{}, fmt.Errorf("subscribers: import: JSON after element %d: %w", im.index, err)
		}
		if d, ok := tok.(json.Delim); !ok || d != ']' {
			return Row{}, fmt.Errorf("subscribers: import: JSON after element %d: unexpected %v", im.index, tok)
		}
		if _, err := im.dec.Token(); err != io.EOF {
			return Row{}, fmt.Errorf("subscribers: import: JSON: data after the closing ']'")
		}
		return Row{}, io.EOF
	}
	im.index++
	var raw json.RawMessage
	if err := im.dec.Decode(&raw); err != nil {
		return Row{}, fmt.Errorf("subscribers: import: JSON element %d (byte %d): %w", im.index, im.dec.InputOffset(), err)
	}
	row := Row{Line: im.index}
	f, rerr := parseJSONObject(raw)
	if rerr != nil {
		row.Err = rerr
		return row, nil
	}
	sub, rerr := im.build(im.index, f)
	row.Subscriber = sub
	row.Given = f.given()
	if rerr != nil {
		row.Err = rerr
	}
	return row, nil
}

// parseJSONObject turns one array element into fields.
func parseJSONObject(raw json.RawMessage) (fields, *RowError) {
	var f fields
	if len(raw) == 0 || raw[0] != '{' {
		return f, &RowError{Reason: "element is not an object"}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return f, &RowError{Reason: "element is not an object: " + err.Error(), Err: err}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic: the first error is always the same one
	lower := make(map[string]string, len(obj))
	for _, k := range keys {
		lk := strings.ToLower(strings.TrimSpace(k))
		if prev, dup := lower[lk]; dup {
			return f, rowErr(k, "", fmt.Sprintf("field appears twice (also as %q)", prev), nil)
		}
		lower[lk] = k
	}
	str := func(k string, v json.RawMessage) (string, *RowError) {
		var s string
		if isNull(v) {
			return "", nil
		}
		if err := json.Unmarshal(v, &s); err != nil {
			return "", rowErr(k, string(v), "want a string", err)
		}
		return s, nil
	}
	var err *RowError
	for _, k := range keys {
		v := obj[k]
		lk := strings.ToLower(strings.TrimSpace(k))
		switch lk {
		case ColEmail:
			f.email, err = str(k, v)
		case ColName:
			f.name, err = str(k, v)
		case ColTimezone:
			f.timezone, err = str(k, v)
		case ColFrequency:
			f.frequency, err = str(k, v)
		case ColStatus:
			f.status, err = str(k, v)
		case ColSendHour:
			switch {
			case isNull(v):
			case v[0] == '"':
				f.sendHour, err = str(k, v)
			default:
				var n json.Number
				if json.Unmarshal(v, &n) != nil {
					err = rowErr(k, string(v), "want an integer from 0 to 23", nil)
				}
				f.sendHour = n.String()
			}
		case ColTopics:
			f.topicsCol = k
			switch {
			case isNull(v):
			case v[0] == '[':
				if json.Unmarshal(v, &f.topics) != nil {
					err = rowErr(k, string(v), "want an array of strings or a ';'-separated string", nil)
				}
			default:
				var s string
				s, err = str(k, v)
				f.topics = strings.Split(s, ";")
			}
		case "attrs":
			if isNull(v) {
				continue
			}
			var m map[string]*string
			if json.Unmarshal(v, &m) != nil {
				err = rowErr(k, string(v), "want an object of strings", nil)
				break
			}
			ak := make([]string, 0, len(m))
			for a := range m {
				ak = append(ak, a)
			}
			slices.Sort(ak)
			for _, a := range ak {
				if m[a] != nil {
					f.attrs = append(f.attrs, kv{a, *m[a]})
				}
			}
		case "lists":
			if isNull(v) {
				continue
			}
			err = parseJSONLists(k, v, &f)
		case "consent":
			if isNull(v) {
				continue
			}
			var c Consent
			if e := json.Unmarshal(v, &c); e != nil {
				err = rowErr(k, string(v), "want {\"time\", \"ip\", \"source\"}", e)
				break
			}
			f.consent = &c
		case "id", "created", "updated":
			// owned by the store
		default:
			switch {
			case isNull(v):
			case v[0] == '"':
				var s string
				s, err = str(k, v)
				f.attrs = append(f.attrs, kv{k, s})
			case v[0] == '{' || v[0] == '[':
				err = rowErr(k, string(v), "want a string, number or boolean", nil)
			default: // number, true, false: keep the JSON text
				f.attrs = append(f.attrs, kv{k, string(v)})
			}
		}
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

func parseJSONLists(k string, v json.RawMessage, f *fields) *RowError {
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil {
		return rowErr(k, string(v), "want an object of list name to status", nil)
	}
	f.lists = make(map[string]Membership, len(m))
	for name, mv := range m {
		var ms Membership
		var s string
		if json.Unmarshal(mv, &s) == nil {
			ms.Status = Status(s)
		} else if err := json.Unmarshal(mv, &ms); err != nil {
			return rowErr(k+"."+name, string(mv), "want a status or {\"status\", \"since\"}", err)
		}
		f.lists[name] = ms
	}
	return nil
}

func isNull(v json.RawMessage) bool { return len(v) == 0 || string(v) == "null" }

// badRune reports runes that must never be stored in a name, topic or
// attribute: control characters (C0, DEL, C1) and the Unicode line and
// paragraph separators.
func badRune(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

func containsBad(s string) bool { return strings.ContainsFunc(s, badRune) }

// checkText rejects control characters and invalid UTF-8 in a value.
func checkText(column, v string) *RowError {
	if !utf8.ValidString(v) {
		return rowErr(column, v, "is not valid UTF-8", nil)
	}
	if containsBad(v) {
		return rowErr(column, v, "contains control characters (CR, LF, tab…)", nil)
	}
	return nil
}

// formulaWarning returns a warning when stored, the value kept from raw
// (the cell as written, trimmed), starts with a formula character and raw
// was not escaped with an apostrophe as WriteCSV does.
func formulaWarning(column, raw, stored string) (Warning, bool) {
	c, ok := FormulaPrefix(stored)
	if !ok || strings.HasPrefix(raw, "'") {
		return Warning{}, false
	}
	what := fmt.Sprintf("'%c'", c)
	switch c {
	case '\t':
		what = "a tab"
	case '\r':
		what = "a carriage return"
	}
	return Warning{Column: column, Value: cut(stored),
		Reason: "starts with " + what + ": kept as text; exports prefix it with '"}, true
}

// formulaWarnings returns the warnings about the text values of a valid
// CSV row: those a spreadsheet would read as formulas.
func formulaWarnings(line int, f fields, sub Subscriber) []Warning {
	var ws []Warning
	add := func(column, raw, stored string) {
		if w, ok := formulaWarning(column, strings.TrimSpace(raw), stored); ok {
			w.Line = line
			ws = append(ws, w)
		}
	}
	add(ColEmail, f.email, sub.Email)
	add(ColName, f.name, sub.Name)
	add(ColTopics, strings.Join(f.topics, ";"), strings.Join(sub.Topics, ";"))
	for _, a := range f.attrs {
		if v, ok := sub.Attrs[a.key]; ok {
			add(a.key, a.value, v)
		}
	}
	return ws
}

// unescapeFormula removes the apostrophe WriteCSV puts before a cell that
// starts with a spreadsheet formula character.
func unescapeFormula(s string) string {
	if len(s) >= 2 && s[0] == '\'' && strings.IndexByte("=+-@", s[1]) >= 0 {
		return s[1:]
	}
	return s
}

// build validates f and returns the subscriber. The returned Subscriber
// holds what was read so far even when the row is rejected.
func (im *Importer) build(line int, f fields) (Subscriber, *RowError) {
	now := im.opts.Now
	sub := Subscriber{
		Lists:     make(map[string]Membership, len(im.opts.Lists)),
		SendHour:  -1,
		Frequency: Daily,
		Consent:   Consent{Time: now, Source: im.opts.Source},
		Created:   now,
		Updated:   now,
	}

	// email
	raw := unescapeFormula(strings.TrimSpace(f.email))
	if raw == "" {
		return sub, rowErr(ColEmail, f.email, "is required", nil)
	}
	email, err := NormalizeEmail(raw)
	if err != nil {
		return sub, rowErr(ColEmail, f.email, "is not a valid address", err)
	}
	sub.Email = email
	if first, dup := im.seen[email]; dup {
		return sub, rowErr(ColEmail, email, fmt.Sprintf("appears again (first on %s %d)", im.unit, first), nil)
	}
	im.seen[email] = line

	// name
	if e := checkText(ColName, f.name); e != nil {
		return sub, e
	}
	name := unescapeFormula(strings.Join(strings.Fields(f.name), " "))
	if utf8.RuneCountInString(name) > MaxNameLen {
		return sub, rowErr(ColName, name, fmt.Sprintf("is longer than %d characters", MaxNameLen), nil)
	}
	sub.Name = name

	// timezone
	if tz := strings.TrimSpace(f.timezone); tz != "" {
		if !im.loadable(tz) {
			return sub, rowErr(ColTimezone, f.timezone, "is not a known IANA time zone (e.g. Europe/Paris)", nil)
		}
		sub.Timezone = tz
	}

	// send_hour
	if h := strings.TrimSpace(f.sendHour); h != "" {
		n, err := strconv.Atoi(h)
		if err != nil || n < -1 || n > 23 {
			return sub, rowErr(ColSendHour, f.sendHour, "want an integer from 0 to 23 (empty: the list's schedule)", nil)
		}
		sub.SendHour = n
	}

	// frequency
	switch fr := strings.ToLower(strings.TrimSpace(f.frequency)); fr {
	case "":
	case Daily, Weekly:
		sub.Frequency = fr
	default:
		return sub, rowErr(ColFrequency, f.frequency, "want daily or weekly", nil)
	}

	// topics
	for _, t := range f.topics {
		if e := checkText(f.topicsCol, t); e != nil {
			return sub, e
		}
		t = strings.ToLower(unescapeFormula(strings.TrimSpace(t)))
		if t == "" || slices.Contains(sub.Topics, t) {
			continue
		}
		if utf8.RuneCountInString(t) > MaxTopicLen {
			return sub, rowErr(f.topicsCol, t, fmt.Sprintf("topic is longer than %d characters", MaxTopicLen), nil)
		}
		sub.Topics = append(sub.Topics, t)
	}

	// lists and statuses
	if e := im.memberships(&sub, f); e != nil {
		return sub, e
	}

	// consent (JSON)
	if c := f.consent; c != nil && !c.Time.IsZero() {
		if e := checkText("consent.source", c.Source); e != nil {
			return sub, e
		}
		if c.IP != "" {
			if _, err := netip.ParseAddr(c.IP); err != nil {
				return sub, rowErr("consent.ip", c.IP, "is not an IP address", err)
			}
		}
		sub.Consent = *c
	}

	// attributes
	for _, a := range f.attrs {
		key := strings.ToLower(strings.TrimSpace(a.key))
		if key == "" || slices.Contains(knownColumns, key) {
			return sub, rowErr("attribute", a.key, "is not a usable attribute name", nil)
		}
		if e := checkText("attribute name", key); e != nil {
			return sub, e
		}
		if utf8.RuneCountInString(key) > MaxAttrKeyLen {
			return sub, rowErr("attribute name", key, fmt.Sprintf("is longer than %d characters", MaxAttrKeyLen), nil)
		}
		if e := checkText(key, a.value); e != nil {
			return sub, e
		}
		v := unescapeFormula(strings.TrimSpace(a.value))
		if v == "" {
			continue
		}
		if utf8.RuneCountInString(v) > MaxAttrValueLen {
			return sub, rowErr(key, v, fmt.Sprintf("is longer than %d characters", MaxAttrValueLen), nil)
		}
		if _, dup := sub.Attrs[key]; dup {
			return sub, rowErr("attribute", a.key, "appears twice", nil)
		}
		if sub.Attrs == nil {
			sub.Attrs = make(map[string]string)
		}
		sub.Attrs[key] = v
	}
	return sub, nil
}

// memberships puts sub on the import's lists with the import's status,
// then applies the row's own statuses.
func (im *Importer) memberships(sub *Subscriber, f fields) *RowError {
	now := im.opts.Now
	for _, l := range im.opts.Lists {
		sub.SetStatus(l, im.opts.Status, now)
	}

	names := make([]string, 0, len(f.lists))
	for name := range f.lists {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		m := f.lists[name]
		st := Status(strings.ToLower(strings.TrimSpace(string(m.Status))))
		if !listName.MatchString(name) {
			return rowErr("lists", name, "is not a valid list name", nil)
		}
		if !st.Valid() {
			return rowErr("lists."+name, string(m.Status), "is not a status (pending, confirmed, unsubscribed, bounced, complained)", nil)
		}
		since := m.Since
		if since.IsZero() {
			since = now
		}
		sub.Lists[name] = Membership{Status: st, Since: since}
	}
	cell := strings.TrimSpace(f.status)
	if cell == "" {
		return nil
	}
	if e := checkText(ColStatus, cell); e != nil {
		return e
	}
	if !strings.Contains(cell, ":") {
		st := Status(strings.ToLower(cell))
		if !st.Valid() {
			return rowErr(ColStatus, f.status, "is not a status (pending, confirmed, unsubscribed, bounced, complained)", nil)
		}
		if len(im.opts.Lists) == 0 {
			return rowErr(ColStatus, f.status, "names no list: import into a list, or write list:status", nil)
		}
		for _, l := range im.opts.Lists {
			sub.SetStatus(l, st, now)
		}
		return nil
	}
	done := make(map[string]bool)
	for pair := range strings.SplitSeq(cell, ";") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		l, s, ok := strings.Cut(pair, ":")
		l = strings.TrimSpace(l)
		st := Status(strings.ToLower(strings.TrimSpace(s)))
		switch {
		case !ok || !listName.MatchString(l):
			return rowErr(ColStatus, pair, "want list:status", nil)
		case !st.Valid():
			return rowErr(ColStatus, pair, "is not a status (pending, confirmed, unsubscribed, bounced, complained)", nil)
		case done[l]:
			return rowErr(ColStatus, pair, "names list "+l+" twice", nil)
		}
		done[l] = true
		sub.SetStatus(l, st, now)
	}
	return nil
}

// loadable reports whether name is an IANA time zone, caching the answer.
func (im *Importer) loadable(name string) bool {
	ok, cached := im.zone[name]
	if cached {
		return ok
	}
	ok = name != "Local" && !containsBad(name) && utf8.ValidString(name)
	if ok {
		_, err := time.LoadLocation(name)
		ok = err == nil
	}
	if len(im.zone) < 1000 {
		im.zone[name] = ok
	}
	return ok
}
