package subscribers

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

var importNow = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func dailyOpts() ImportOptions {
	return ImportOptions{Lists: []string{"daily"}, Now: importNow}
}

func readAll(t testing.TB, im *Importer) []Row {
	t.Helper()
	var rows []Row
	for {
		row, err := im.Next()
		if err == io.EOF {
			return rows
		}
		if err != nil {
			t.Fatalf("Next after %d rows: %v", len(rows), err)
		}
		rows = append(rows, row)
	}
}

func importCSV(t testing.TB, in string, opts ImportOptions) []Row {
	t.Helper()
	im, err := NewCSVImporter(strings.NewReader(in), opts)
	if err != nil {
		t.Fatalf("NewCSVImporter: %v", err)
	}
	return readAll(t, im)
}

// want describes one expected row: accepted with email, or rejected with
// an error naming column and containing reason.
type want struct {
	line   int
	email  string // accepted row's email
	column string // rejected: RowError.Column
	reason string // rejected: substring of the error text
}

func checkRows(t *testing.T, got []Row, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		for _, r := range got {
			t.Logf("got line %d %q err=%v", r.Line, r.Subscriber.Email, r.Err)
		}
		t.Fatalf("got %d rows, want %d", len(got), len(wants))
	}
	for i, w := range wants {
		r := got[i]
		if r.Line != w.line {
			t.Errorf("row %d: line = %d, want %d (err=%v)", i, r.Line, w.line, r.Err)
		}
		if w.reason == "" && w.column == "" {
			if r.Err != nil {
				t.Errorf("line %d: unexpected rejection: %v", r.Line, r.Err)
			} else if r.Subscriber.Email != w.email {
				t.Errorf("line %d: email = %q, want %q", r.Line, r.Subscriber.Email, w.email)
			}
			continue
		}
		if r.Err == nil {
			t.Errorf("line %d: accepted %+v, want rejection %q", r.Line, r.Subscriber, w.reason)
			continue
		}
		var re *RowError
		if !errors.As(r.Err, &re) {
			t.Errorf("line %d: error %T is not a *RowError", r.Line, r.Err)
			continue
		}
		if re.Column != w.column {
			t.Errorf("line %d: column = %q, want %q (%v)", r.Line, re.Column, w.column, r.Err)
		}
		if !strings.Contains(r.Err.Error(), w.reason) {
			t.Errorf("line %d: error %q does not contain %q", r.Line, r.Err, w.reason)
		}
	}
}

func TestCSVImportRows(t *testing.T) {
	const hdr = "email,name,timezone,send_hour,frequency,topics\n"
	tests := []struct {
		name  string
		in    string
		opts  ImportOptions
		wants []want
	}{
		{
			name: "OK",
			in:   hdr + "ada@example.com,Ada,Europe/London,7,daily,science\nbob@example.org,,,,,\n",
			wants: []want{
				{line: 2, email: "ada@example.com"},
				{line: 3, email: "bob@example.org"},
			},
		},
		{
			name: "BadEmail",
			in:   hdr + "ok@example.com,,,,,\nnot-an-address,,,,,\n,Nobody,,,,\nx@localhost,,,,,\n",
			wants: []want{
				{line: 2, email: "ok@example.com"},
				{line: 3, column: "email", reason: `email "not-an-address": is not a valid address`},
				{line: 4, column: "email", reason: "is required"},
				{line: 5, column: "email", reason: `"x@localhost"`},
			},
		},
		{
			name: "CRLFInEmail",
			in:   hdr + "\"a@example.com\r\nBcc: b@example.com\",,,,,\n",
			wants: []want{
				{line: 2, column: "email", reason: "is not a valid address"},
			},
		},
		{
			name: "UnknownTimezone",
			in:   hdr + "a@example.com,,Mars/Olympus,,,\nb@example.com,,Local,,,\nc@example.com,,America/New_York,,,\nd@example.com,,../../etc/passwd,,,\n",
			wants: []want{
				{line: 2, column: "timezone", reason: `timezone "Mars/Olympus": is not a known IANA time zone`},
				{line: 3, column: "timezone", reason: `"Local"`},
				{line: 4, email: "c@example.com"},
				{line: 5, column: "timezone", reason: "not a known IANA"},
			},
		},
		{
			name: "SendHour",
			in: hdr + "a@example.com,,,24,,\nb@example.com,,,-2,,\nc@example.com,,,7am,,\nd@example.com,,,1.5,,\n" +
				"e@example.com,,,0,,\nf@example.com,,,23,,\ng@example.com,,, 8 ,,\n",
			wants: []want{
				{line: 2, column: "send_hour", reason: `send_hour "24": want an integer from 0 to 23`},
				{line: 3, column: "send_hour", reason: `"-2"`},
				{line: 4, column: "send_hour", reason: `"7am"`},
				{line: 5, column: "send_hour", reason: `"1.5"`},
				{line: 6, email: "e@example.com"},
				{line: 7, email: "f@example.com"},
				{line: 8, email: "g@example.com"},
			},
		},
		{
			name: "Frequency",
			in:   hdr + "a@example.com,,,,monthly,\nb@example.com,,,,WEEKLY,\n",
			wants: []want{
				{line: 2, column: "frequency", reason: `frequency "monthly": want daily or weekly`},
				{line: 3, email: "b@example.com"},
			},
		},
		{
			name: "FieldCount",
			in:   hdr + "a@example.com,,\nb@example.com,,,,,,extra\nc@example.com,,,,,\n",
			wants: []want{
				{line: 2, reason: "has 3 fields, the header has 6"},
				{line: 3, reason: "has 7 fields, the header has 6"},
				{line: 4, email: "c@example.com"},
			},
		},
		{
			name: "DuplicateInFile",
			in:   hdr + "A@Example.com,First,,,,\nb@example.com,,,,,\n a@example.COM ,Second,,,,\n",
			wants: []want{
				{line: 2, email: "a@example.com"},
				{line: 3, email: "b@example.com"},
				{line: 4, column: "email", reason: `email "a@example.com": appears again (first on line 2)`},
			},
		},
		{
			name: "MultiLineQuotedFieldShiftsLines",
			in: hdr + "a@example.com,\"Ann\nMarie\nSmith\",,,,\n" + // lines 2–4, rejected: LF in a name
				"b@example.com,,,,,\"x\ny\"\n" + // lines 5–6: LF in a topic
				"c@example.com,Carl,,,,\n", // line 7
			wants: []want{
				{line: 2, column: "name", reason: "contains control characters"},
				{line: 5, column: "topics", reason: "contains control characters"},
				{line: 7, email: "c@example.com"},
			},
		},
		{
			name: "BareQuoteInTheMiddle",
			in: hdr + "a@example.com,Ann,,,,\n" +
				"b@example.com,Bo\"b,,,,\n" + // line 3: bare quote
				"c@example.com,\"Carl\"x,,,,\n" + // line 4: text after a closing quote
				"d@example.com,Dora,,,,\n",
			wants: []want{
				{line: 2, email: "a@example.com"},
				{line: 3, reason: "CSV syntax: bare \" in non-quoted-field (line 3, column 17)"},
				{line: 4, reason: "CSV syntax"},
				{line: 5, email: "d@example.com"},
			},
		},
		{
			name: "ControlCharacters",
			in: "email,name,topics,company\n" +
				"a@example.com,\"Ann\r\nBcc: x@evil.example\",,\n" + // lines 2–3
				"b@example.com,,,\"Acme\rInc\"\n" + // line 4: CR in an attribute (csv keeps a lone CR)
				"c@example.com,Nul\x00l,,\n" +
				"d@example.com,\tTabbed,,\n" +
				"e@example.com,,tech\u2028news,\n" +
				"f@example.com,N\u0085EL,,\n" +
				"g@example.com,Bad \xff UTF-8,,\n" +
				"h@example.com,Fine,,\n",
			wants: []want{
				{line: 2, column: "name", reason: "contains control characters"},
				{line: 4, column: "company", reason: "contains control characters"},
				{line: 5, column: "name", reason: "contains control characters"},
				{line: 6, column: "name", reason: `name "\tTabbed": contains control characters`},
				{line: 7, column: "topics", reason: "contains control characters"},
				{line: 8, column: "name", reason: "contains control characters"},
				{line: 9, column: "name", reason: "is not valid UTF-8"},
				{line: 10, email: "h@example.com"},
			},
		},
		{
			name: "NameLength",
			in: "email,name\n" +
				"a@example.com," + strings.Repeat("é", 200) + "\n" +
				"b@example.com," + strings.Repeat("é", 201) + "\n",
			wants: []want{
				{line: 2, email: "a@example.com"},
				{line: 3, column: "name", reason: "is longer than 200 characters"},
			},
		},
		{
			name: "Status",
			in: "email,status\n" +
				"a@example.com,unsubscribed\n" +
				"b@example.com,weekly:pending;daily:Confirmed\n" +
				"c@example.com,bogus\n" +
				"d@example.com,daily:bogus\n" +
				"e@example.com,Daily List:confirmed\n" +
				"f@example.com,daily:pending;daily:confirmed\n",
			opts: dailyOpts(),
			wants: []want{
				{line: 2, email: "a@example.com"},
				{line: 3, email: "b@example.com"},
				{line: 4, column: "status", reason: `status "bogus": is not a status`},
				{line: 5, column: "status", reason: `"daily:bogus"`},
				{line: 6, column: "status", reason: "want list:status"},
				{line: 7, column: "status", reason: "names list daily twice"},
			},
		},
		{
			name: "BareStatusWithoutList",
			in:   "email,status\na@example.com,confirmed\nb@example.com,daily:confirmed\nc@example.com,\n",
			opts: ImportOptions{Now: importNow},
			wants: []want{
				{line: 2, column: "status", reason: "names no list"},
				{line: 3, email: "b@example.com"},
				{line: 4, email: "c@example.com"},
			},
		},
		{
			name: "UnnamedColumn",
			in:   "email,,name\na@example.com,,Ann\nb@example.com,stray,Bob\n",
			wants: []want{
				{line: 2, email: "a@example.com"},
				{line: 3, column: "column 2", reason: `column 2 "stray": has a value but no name in the header`},
			},
		},
		{
			name: "EmptyRowsSkipped",
			in:   "email,name\n\na@example.com,Ann\n,\n , \nb@example.com,Bob\n,,,\n",
			wants: []want{
				{line: 3, email: "a@example.com"},
				{line: 6, email: "b@example.com"},
			},
		},
		{
			name: "CRLFLineEndings",
			in:   "email,name\r\na@example.com,Ann\r\n\"b@example.com\",\"Bob\"\r\nc@example.com,Carl",
			wants: []want{
				{line: 2, email: "a@example.com"},
				{line: 3, email: "b@example.com"},
				{line: 4, email: "c@example.com"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			if opts.Now.IsZero() {
				opts = dailyOpts()
			}
			checkRows(t, importCSV(t, tt.in, opts), tt.wants)
		})
	}
}

func TestCSVImportValues(t *testing.T) {
	t.Run("Defaults", func(t *testing.T) {
		rows := importCSV(t, "email\nA@Example.com\n", dailyOpts())
		got := rows[0].Subscriber
		want := Subscriber{
			Email:     "a@example.com",
			Lists:     map[string]Membership{"daily": {Status: Confirmed, Since: importNow}},
			SendHour:  -1,
			Frequency: Daily,
			Consent:   Consent{Time: importNow, Source: "import"},
			Created:   importNow,
			Updated:   importNow,
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
	})
	t.Run("AllColumns", func(t *testing.T) {
		in := "\uFEFF Email ,NAME,TimeZone,Send_Hour, Frequency ,Topics,Company,Plan \n" +
			"ada@example.com,\"  Ada   Augusta\u00a0 Lovelace \",Europe/London,7,Weekly,\" Science; science ;;BUSINESS \",\" Analytical Engines \",\n"
		opts := ImportOptions{Lists: []string{"daily", "tech"}, Status: Pending, Source: "cli", Now: importNow}
		rows := importCSV(t, in, opts)
		if rows[0].Err != nil {
			t.Fatal(rows[0].Err)
		}
		got := rows[0].Subscriber
		want := Subscriber{
			Email: "ada@example.com",
			Name:  "Ada Augusta Lovelace",
			Lists: map[string]Membership{
				"daily": {Status: Pending, Since: importNow},
				"tech":  {Status: Pending, Since: importNow},
			},
			Timezone:  "Europe/London",
			SendHour:  7,
			Frequency: Weekly,
			Topics:    []string{"science", "business"},
			Attrs:     map[string]string{"company": "Analytical Engines"}, // empty "plan" not stored
			Consent:   Consent{Time: importNow, Source: "cli"},
			Created:   importNow,
			Updated:   importNow,
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
	})
	t.Run("StatusColumnWins", func(t *testing.T) {
		in := "email,status\na@example.com,unsubscribed\nb@example.com,weekly:pending;daily:bounced\n"
		rows := importCSV(t, in, dailyOpts())
		if got, want := rows[0].Subscriber.Lists, map[string]Membership{"daily": {Unsubscribed, importNow}}; !reflect.DeepEqual(got, want) {
			t.Errorf("bare status: lists = %v, want %v", got, want)
		}
		want := map[string]Membership{"daily": {Bounced, importNow}, "weekly": {Pending, importNow}}
		if got := rows[1].Subscriber.Lists; !reflect.DeepEqual(got, want) {
			t.Errorf("pairs: lists = %v, want %v", got, want)
		}
	})
	t.Run("FormulaPrefixesKept", func(t *testing.T) {
		// Import stores formula-looking values as they are; escaping them
		// is the exporter's job. Only the apostrophe WriteCSV adds is removed.
		in := "email,name,note,topics\n" +
			"a@example.com,=HYPERLINK(\"http://evil.example\"),+1 555,@home\n" +
			"b@example.com,-Bob,@handle,-minus\n" +
			"c@example.com,'=SUM(A1),'@x,'+plus\n" +
			"d@example.com,'plain,'',x\n"
		in = strings.ReplaceAll(in, `=HYPERLINK("http://evil.example")`, `"=HYPERLINK(""http://evil.example"")"`)
		rows := importCSV(t, in, dailyOpts())
		type nv struct {
			name, note string
			topics     []string
		}
		wants := []nv{
			{`=HYPERLINK("http://evil.example")`, "+1 555", []string{"@home"}},
			{"-Bob", "@handle", []string{"-minus"}},
			{"=SUM(A1)", "@x", []string{"+plus"}},
			{"'plain", "''", []string{"x"}},
		}
		for i, w := range wants {
			r := rows[i]
			if r.Err != nil {
				t.Errorf("line %d: %v", r.Line, r.Err)
				continue
			}
			got := nv{r.Subscriber.Name, r.Subscriber.Attrs["note"], r.Subscriber.Topics}
			if !reflect.DeepEqual(got, w) {
				t.Errorf("line %d: got %+v, want %+v", r.Line, got, w)
			}
		}
	})
	t.Run("RejectedRowKeepsEmail", func(t *testing.T) {
		rows := importCSV(t, "email,timezone\nA@example.com,Nowhere/Land\n", dailyOpts())
		if rows[0].Err == nil || rows[0].Subscriber.Email != "a@example.com" {
			t.Errorf("got %q, %v; want the normalized email and an error", rows[0].Subscriber.Email, rows[0].Err)
		}
	})
	t.Run("LongValueCut", func(t *testing.T) {
		long := strings.Repeat("x", 100)
		rows := importCSV(t, "email,timezone\na@example.com,"+long+"\n", dailyOpts())
		var re *RowError
		if !errors.As(rows[0].Err, &re) {
			t.Fatalf("err = %v", rows[0].Err)
		}
		if want := strings.Repeat("x", 60) + "…"; re.Value != want {
			t.Errorf("value = %q, want %q", re.Value, want)
		}
		if want := `timezone "` + strings.Repeat("x", 60) + `…": `; !strings.HasPrefix(re.Error(), want) {
			t.Errorf("error = %q, want prefix %q", re.Error(), want)
		}
	})
	t.Run("ErrorsUnwrap", func(t *testing.T) {
		rows := importCSV(t, "email,name\nbad,\na@example.com\nb@example.com,\"x\"y\n", dailyOpts())
		if !errors.Is(rows[0].Err, ErrInvalidEmail) {
			t.Errorf("bad email: %v does not wrap ErrInvalidEmail", rows[0].Err)
		}
		if !errors.Is(rows[1].Err, csv.ErrFieldCount) {
			t.Errorf("field count: %v does not wrap csv.ErrFieldCount", rows[1].Err)
		}
		var pe *csv.ParseError
		if !errors.As(rows[2].Err, &pe) || pe.StartLine != 4 {
			t.Errorf("syntax: %v is not a *csv.ParseError at line 4", rows[2].Err)
		}
	})
}

func TestCSVImportFixture(t *testing.T) {
	f, err := os.Open("testdata/mixed.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := NewCSVImporter(f, dailyOpts())
	if err != nil {
		t.Fatal(err)
	}
	rows := readAll(t, im)
	checkRows(t, rows, []want{
		{line: 2, email: "ada.lovelace@example.com"},
		{line: 3, email: "jonas.berg@example.org"},
		{line: 4, column: "email", reason: `"not an address"`},
		{line: 5, column: "company", reason: "contains control characters"}, // lines 5–6: a quoted field over two lines
		{line: 7, column: "send_hour", reason: `"25"`},
		{line: 8, reason: "CSV syntax"},
		{line: 9, email: "kenji.sato@example.com"},
		{line: 10, column: "email", reason: "first on line 2"},
		{line: 11, column: "name", reason: "contains control characters"},
	})
	if got, want := rows[0].Subscriber.Attrs, map[string]string{"company": "Analytical Engines Ltd"}; !reflect.DeepEqual(got, want) {
		t.Errorf("attrs = %v, want %v", got, want)
	}
	if got, want := rows[3].Subscriber.Name, "Renée Dubois"; got != want {
		t.Errorf("name = %q, want %q", got, want)
	}
}

func TestCSVImportHeader(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"Empty", "", "empty input"},
		{"OnlyBOM", "\uFEFF", "empty input"},
		{"NoEmailColumn", "name,timezone\nAnn,UTC\n", `header has no "email" column`},
		{"Semicolons", "email;name\na@example.com;Ann\n", "only ',' separates columns"},
		{"Duplicate", "Email,name, EMAIL \n", `column "EMAIL" appears twice (columns 1 and 3)`},
		{"DuplicateAttr", "email,Company,company\n", `column "company" appears twice (columns 2 and 3)`},
		{"SyntaxError", "email,na\"me\n", "header"},
		{"ControlInName", "email,\"com\npany\"\n", "control characters"},
		{"LongAttrName", "email," + strings.Repeat("k", 101) + "\n", "longer than 100 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im, err := NewCSVImporter(strings.NewReader(tt.in), dailyOpts())
			if err == nil {
				t.Fatalf("NewCSVImporter = %v, nil; want an error containing %q", im, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "subscribers: import: ") {
				t.Errorf("error %q, want it to start with the package and contain %q", err, tt.wantErr)
			}
		})
	}
	t.Run("HeaderOnly", func(t *testing.T) {
		if rows := importCSV(t, "email,name\n", dailyOpts()); len(rows) != 0 {
			t.Errorf("got %d rows from a header-only file", len(rows))
		}
	})
}

func TestImportOptions(t *testing.T) {
	tests := []struct {
		name string
		opts ImportOptions
	}{
		{"BadStatus", ImportOptions{Status: "active"}},
		{"BadList", ImportOptions{Lists: []string{"Daily News"}}},
		{"ControlInSource", ImportOptions{Source: "cli\r\nX: y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewCSVImporter(strings.NewReader("email\n"), tt.opts); err == nil {
				t.Error("NewCSVImporter accepted bad options")
			}
			if _, err := NewJSONImporter(strings.NewReader("[]"), tt.opts); err == nil {
				t.Error("NewJSONImporter accepted bad options")
			}
		})
	}
	t.Run("ZeroNowIsCurrentTime", func(t *testing.T) {
		before := time.Now()
		rows := importCSV(t, "email\na@example.com\n", ImportOptions{})
		if c := rows[0].Subscriber.Created; c.Before(before) {
			t.Errorf("Created = %v, before the import started (%v)", c, before)
		}
		if got := rows[0].Subscriber.Lists; len(got) != 0 {
			t.Errorf("lists = %v with no Lists option", got)
		}
	})
}

// failingReader yields data, then a non-EOF error.
type failingReader struct {
	data string
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.data == "" {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestImportIOError(t *testing.T) {
	boom := errors.New("disk on fire")
	t.Run("CSV", func(t *testing.T) {
		im, err := NewCSVImporter(&failingReader{data: "email\na@example.com\nb@example.com\n", err: boom}, dailyOpts())
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"a@example.com", "b@example.com"} {
			row, err := im.Next()
			if err != nil || row.Subscriber.Email != want {
				t.Fatalf("Next = %q, %v; want %q", row.Subscriber.Email, err, want)
			}
		}
		for range 2 { // the error is sticky
			if _, err := im.Next(); !errors.Is(err, boom) {
				t.Fatalf("Next error = %v, want %v", err, boom)
			}
		}
	})
	t.Run("CSVHeader", func(t *testing.T) {
		if _, err := NewCSVImporter(&failingReader{err: boom}, dailyOpts()); !errors.Is(err, boom) {
			t.Fatalf("NewCSVImporter error = %v, want %v", err, boom)
		}
	})
	t.Run("JSON", func(t *testing.T) {
		im, err := NewJSONImporter(&failingReader{data: `[{"email":"a@example.com"},`, err: boom}, dailyOpts())
		if err != nil {
			t.Fatal(err)
		}
		if row, err := im.Next(); err != nil || row.Err != nil {
			t.Fatalf("first row: %v, %v", err, row.Err)
		}
		if _, err := im.Next(); !errors.Is(err, boom) {
			t.Fatalf("Next error = %v, want %v", err, boom)
		}
	})
}

// TestCSVImportStreaming pushes 100,000 rows through a pipe: the importer
// must read them as they come rather than all at once (the writer blocks
// until the reader has taken each chunk).
func TestCSVImportStreaming(t *testing.T) {
	const n = 100_000
	pr, pw := io.Pipe()
	go func() {
		w := csv.NewWriter(pw)
		w.Write([]string{"email", "name", "timezone", "send_hour", "frequency", "topics", "plan"})
		zones := []string{"Europe/Paris", "America/Chicago", "Asia/Tokyo", ""}
		for i := range n {
			w.Write([]string{
				fmt.Sprintf("user%d@example.com", i),
				fmt.Sprintf("User %d", i),
				zones[i%len(zones)],
				fmt.Sprint(i % 24),
				[]string{"daily", "weekly"}[i%2],
				"news;sport",
				fmt.Sprintf("plan-%d", i%3),
			})
		}
		w.Flush()
		pw.CloseWithError(w.Error())
	}()
	im, err := NewCSVImporter(pr, dailyOpts())
	if err != nil {
		t.Fatal(err)
	}
	accepted, last := 0, 0
	for {
		row, err := im.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if row.Err != nil {
			t.Fatalf("line %d: %v", row.Line, row.Err)
		}
		accepted++
		last = row.Line
	}
	if accepted != n {
		t.Errorf("accepted %d rows, want %d", accepted, n)
	}
	if last != n+1 {
		t.Errorf("last line = %d, want %d", last, n+1)
	}
}

func TestReportString(t *testing.T) {
	r := Report{Added: 100, Updated: 20, Skipped: 3, Rejected: make([]Row, 2), Warnings: make([]Warning, 1)}
	if got, want := r.String(), "imported 120 (100 added, 20 updated), skipped 3 existing, rejected 2, 1 warning"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (Report{}).String(), "imported 0 (0 added, 0 updated), skipped 0 existing, rejected 0, 0 warnings"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestFormulaWarnings(t *testing.T) {
	t.Run("HostileRows", func(t *testing.T) {
		in := "email,name,=evil,note,topics,send_hour\n" +
			"=cmd|calc!A1@example.org,\"=HYPERLINK(\"\"http://evil\"\")\",x,=1+1,@home;ok,\n" + // 2
			"plain@example.org,Plain,,'=escaped,ok;=later,-1\n" + // 3: escaped cell, formula not first, send_hour parsed
			"+1@example.org,-Bob ,,+33 1 23 45 67 89,,\n" + // 4
			"bad@@example.org,=x,,,,\n" + // 5: rejected, so no warnings
			"tab@example.org,\"\t=x\",,,,\n" // 6: rejected (control character)
		im, err := NewCSVImporter(strings.NewReader(in), dailyOpts())
		if err != nil {
			t.Fatal(err)
		}
		hw := im.HeaderWarnings()
		if len(hw) != 1 || hw[0].Line != 1 || hw[0].Column != "header column 3" || hw[0].Value != "=evil" {
			t.Errorf("header warnings = %+v, want one for column 3 on line 1", hw)
		}
		rows := readAll(t, im)
		if len(rows) != 5 {
			t.Fatalf("got %d rows, want 5", len(rows))
		}
		type w struct {
			line          int
			column, value string
		}
		var got []w
		for _, r := range rows {
			for _, x := range r.Warnings {
				if x.Line != r.Line {
					t.Errorf("warning %+v on row of line %d", x, r.Line)
				}
				got = append(got, w{x.Line, x.Column, x.Value})
			}
		}
		want := []w{
			{2, "email", "=cmd|calc!a1@example.org"},
			{2, "name", `=HYPERLINK("http://evil")`},
			{2, "topics", "@home;ok"},
			{2, "note", "=1+1"}, // email, name, topics, then attributes; "=evil" x: the header warned

			{4, "email", "+1@example.org"},
			{4, "name", "-Bob"},
			{4, "note", "+33 1 23 45 67 89"},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("warnings:\ngot  %+v\nwant %+v", got, want)
		}
		// The rows are imported all the same, values kept as text.
		if r := rows[0]; r.Err != nil || r.Subscriber.Name != `=HYPERLINK("http://evil")` || r.Subscriber.Attrs["note"] != "=1+1" {
			t.Errorf("line 2: err %v, subscriber %+v", r.Err, r.Subscriber)
		}
		if r := rows[1]; r.Err != nil || r.Subscriber.Attrs["note"] != "=escaped" || len(r.Warnings) != 0 {
			t.Errorf("line 3: err %v, note %q, warnings %v", r.Err, r.Subscriber.Attrs["note"], r.Warnings)
		}
		if rows[3].Err == nil || rows[4].Err == nil || rows[3].Warnings != nil || rows[4].Warnings != nil {
			t.Errorf("lines 5, 6: want rejected without warnings, got %+v / %+v", rows[3], rows[4])
		}
		w0 := rows[0].Warnings[1]
		if got, want := w0.String(), `name "=HYPERLINK(\"http://evil\")": starts with '=': kept as text; exports prefix it with '`; got != want {
			t.Errorf("String() = %s, want %s", got, want)
		}
	})
	t.Run("EscapedHeaderQuiet", func(t *testing.T) {
		im, err := NewCSVImporter(strings.NewReader("email,'=k\na@example.com,'+v\n"), dailyOpts())
		if err != nil {
			t.Fatal(err)
		}
		rows := readAll(t, im)
		if hw := im.HeaderWarnings(); hw != nil || rows[0].Warnings != nil || rows[0].Subscriber.Attrs["=k"] != "+v" {
			t.Errorf("header %v, row %+v", hw, rows[0])
		}
	})
	t.Run("JSONQuiet", func(t *testing.T) {
		im, err := NewJSONImporter(strings.NewReader(`[{"email":"a@example.com","name":"=x","=k":"+1"}]`), dailyOpts())
		if err != nil {
			t.Fatal(err)
		}
		rows := readAll(t, im)
		if rows[0].Err != nil || rows[0].Warnings != nil || im.HeaderWarnings() != nil {
			t.Errorf("JSON row %+v", rows[0])
		}
	})
	t.Run("SharedWithExport", func(t *testing.T) {
		for _, c := range "=+-@\t\rAa'0 " {
			s := string(c) + "x"
			_, formula := FormulaPrefix(s)
			if escaped := escapeCell(s) != s; escaped != formula {
				t.Errorf("%q: FormulaPrefix %v, escapeCell escapes %v", s, formula, escaped)
			}
		}
	})
}

// FuzzCSVImport checks that the importer never panics, that every accepted
// row has a normalized address and no CR or LF in any stored text, and that
// Next ends.
func FuzzCSVImport(f *testing.F) {
	f.Add("email,name,timezone,send_hour,frequency,topics,co\na@example.com,Ann,Europe/Paris,7,daily,a;b,x\n")
	f.Add("\uFEFFEmail,NAME\r\n\"b@example.com\",\"B\r\nX\"\r\n")
	f.Add("email,name\na@example.com,Bo\"b\nc@example.com,\"C\n")
	f.Add("email,status\na@example.com,daily:confirmed;weekly:pending\n")
	f.Add("email,,name\n'=a@example.com,,'-x\n")
	f.Fuzz(func(t *testing.T, in string) {
		im, err := NewCSVImporter(strings.NewReader(in), dailyOpts())
		if err != nil {
			return
		}
		for i := 0; ; i++ {
			if i > len(in)+2 {
				t.Fatalf("more rows (%d) than the input has bytes", i)
			}
			row, err := im.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatalf("Next on an in-memory reader: %v", err)
			}
			if row.Err != nil {
				continue
			}
			s := row.Subscriber
			if norm, err := NormalizeEmail(s.Email); err != nil || norm != s.Email {
				t.Fatalf("accepted email %q: normalized %q, %v", s.Email, norm, err)
			}
			texts := append([]string{s.Email, s.Name, s.Timezone, s.Frequency}, s.Topics...)
			for k, v := range s.Attrs {
				texts = append(texts, k, v)
			}
			for l, m := range s.Lists {
				texts = append(texts, l, string(m.Status))
			}
			for _, v := range texts {
				if strings.ContainsAny(v, "\r\n") {
					t.Fatalf("accepted row holds CR or LF: %q in %+v", v, s)
				}
			}
			if s.SendHour < -1 || s.SendHour > 23 {
				t.Fatalf("accepted send hour %d", s.SendHour)
			}
		}
	})
}

func TestImportGiven(t *testing.T) {
	t.Run("CSV", func(t *testing.T) {
		in := "email,name,timezone,send_hour,frequency,topics,status,plan\n" +
			"a@example.com,,,,,,,\n" +
			"b@example.com,Bob,UTC,7,weekly,x,confirmed,gold\n" +
			"c@example.com, ,,0,,;,,\n"
		rows := importCSV(t, in, dailyOpts())
		all := GivenName | GivenTimezone | GivenSendHour | GivenFrequency | GivenTopics | GivenStatus | GivenAttrs
		for i, want := range []Fields{0, all, GivenSendHour} {
			if got := rows[i].Given; got != want {
				t.Errorf("line %d: Given = %b, want %b", rows[i].Line, got, want)
			}
		}
		if !all.Has(GivenName|GivenAttrs) || GivenSendHour.Has(GivenName) {
			t.Error("Fields.Has is wrong")
		}
	})
	t.Run("JSON", func(t *testing.T) {
		rows := importJSON(t, `[{"email":"a@example.com","lists":{"x":"pending"},"consent":{"time":"2025-01-01T00:00:00Z"}},{"email":"b@example.com","consent":{"source":"form"}}]`, dailyOpts())
		if got, want := rows[0].Given, GivenStatus|GivenConsent; got != want {
			t.Errorf("Given = %b, want %b", got, want)
		}
		if got := rows[1].Given; got != 0 {
			t.Errorf("consent without a time: Given = %b, want 0", got)
		}
	})
}
