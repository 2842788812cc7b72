package subscribers

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func importJSON(t testing.TB, in string, opts ImportOptions) []Row {
	t.Helper()
	im, err := NewJSONImporter(strings.NewReader(in), opts)
	if err != nil {
		t.Fatalf("NewJSONImporter: %v", err)
	}
	return readAll(t, im)
}

func TestJSONImportGood(t *testing.T) {
	f, err := os.Open("testdata/subscribers.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := NewJSONImporter(f, dailyOpts())
	if err != nil {
		t.Fatal(err)
	}
	rows := readAll(t, im)
	checkRows(t, rows, []want{
		{line: 1, email: "ada.lovelace@example.com"},
		{line: 2, email: "jonas@example.org"},
		{line: 3, email: "renee@example.org"},
	})
	since := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	wants := []Subscriber{
		{
			Email:     "ada.lovelace@example.com",
			Name:      "Ada Lovelace",
			Lists:     map[string]Membership{"daily": {Confirmed, importNow}},
			Timezone:  "Europe/London",
			SendHour:  7,
			Frequency: Daily,
			Topics:    []string{"science", "business"},
			Attrs:     map[string]string{"company": "Analytical Engines Ltd", "plan": "gold", "age": "36", "vip": "true"},
			Consent:   Consent{Time: importNow, Source: "import"},
			Created:   importNow,
			Updated:   importNow,
		},
		{
			Email:     "jonas@example.org",
			Lists:     map[string]Membership{"daily": {Unsubscribed, importNow}},
			SendHour:  6,
			Frequency: Daily,
			Topics:    []string{"sport", "local"},
			Consent:   Consent{Time: importNow, Source: "import"},
			Created:   importNow,
			Updated:   importNow,
		},
		{
			Email: "renee@example.org",
			Lists: map[string]Membership{
				"daily":  {Confirmed, importNow},
				"weekly": {Confirmed, since},
				"tech":   {Pending, importNow},
			},
			SendHour:  -1,
			Frequency: Daily,
			Consent:   Consent{Time: since.Add(-time.Minute), IP: "192.0.2.7", Source: "form"},
			Created:   importNow,
			Updated:   importNow,
		},
	}
	for i, w := range wants {
		got := rows[i].Subscriber
		// Consent times decoded from JSON carry no monotonic reading but may
		// differ in Location; compare instants.
		if !got.Consent.Time.Equal(w.Consent.Time) {
			t.Errorf("element %d: consent time %v, want %v", i+1, got.Consent.Time, w.Consent.Time)
		}
		got.Consent.Time = w.Consent.Time
		for l, m := range got.Lists {
			if !m.Since.Equal(w.Lists[l].Since) {
				t.Errorf("element %d: list %s since %v, want %v", i+1, l, m.Since, w.Lists[l].Since)
			}
			m.Since = w.Lists[l].Since
			got.Lists[l] = m
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("element %d:\ngot  %+v\nwant %+v", i+1, got, w)
		}
	}
}

func TestJSONImportBadRows(t *testing.T) {
	in := `[
	  42,
	  {"email": "not an address"},
	  {"email": "a@example.com", "attrs": ["x"]},
	  {"email": "b@example.com", "topics": [1, 2]},
	  {"email": "c@example.com", "Email": "c2@example.com"},
	  {"email": "d@example.com", "send_hour": 7.5},
	  {"email": "e@example.com", "send_hour": true},
	  {"email": "f@example.com", "profile": {"age": 3}},
	  {"email": "g@example.com", "lists": {"daily": "gone"}},
	  {"email": "h@example.com", "consent": {"time": "2025-01-01T00:00:00Z", "ip": "not-ip"}},
	  {"email": "i@example.com", "name": "Eve\r\nBcc: x@example.com"},
	  {"email": "j@example.com", "attrs": {"email": "x@example.com"}},
	  {"email": "k@example.com", "note": "\u2028"},
	  {"email": "D@example.com"},
	  {"email": 7},
	  {"email": "l@example.com", "timezone": "Nowhere/City", "frequency": "hourly"},
	  {"email": "ok@example.com", "send_hour": -1}
	]`
	rows := importJSON(t, in, dailyOpts())
	checkRows(t, rows, []want{
		{line: 1, reason: "element is not an object"},
		{line: 2, column: "email", reason: `email "not an address": is not a valid address`},
		{line: 3, column: "attrs", reason: "want an object of strings"},
		{line: 4, column: "topics", reason: "want an array of strings"},
		{line: 5, column: "email", reason: "field appears twice"},
		{line: 6, column: "send_hour", reason: `send_hour "7.5": want an integer from 0 to 23`},
		{line: 7, column: "send_hour", reason: "want an integer"},
		{line: 8, column: "profile", reason: "want a string, number or boolean"},
		{line: 9, column: "lists.daily", reason: "is not a status"},
		{line: 10, column: "consent.ip", reason: "is not an IP address"},
		{line: 11, column: "name", reason: "contains control characters"},
		{line: 12, column: "attribute", reason: "is not a usable attribute name"},
		{line: 13, column: "note", reason: "contains control characters"},
		{line: 14, column: "email", reason: "appears again"},
		{line: 15, column: "email", reason: "want a string"},
		{line: 16, column: "timezone", reason: "not a known IANA time zone"},
		{line: 17, email: "ok@example.com"},
	})
	if err := rows[13].Err; err == nil || !strings.Contains(err.Error(), "(first on element 6)") {
		t.Errorf("duplicate: %v does not name element 6", err)
	}
	if got := rows[16].Subscriber.SendHour; got != -1 {
		t.Errorf("send_hour -1 gave %d", got)
	}
}

func TestJSONImportFatal(t *testing.T) {
	t.Run("Constructor", func(t *testing.T) {
		tests := []struct{ name, in, wantErr string }{
			{"Empty", "", "empty input"},
			{"Object", `{"email": "a@example.com"}`, "want an array of objects"},
			{"Syntax", `nope`, "JSON"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := NewJSONImporter(strings.NewReader(tt.in), dailyOpts())
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "subscribers: import: ") {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
			})
		}
	})
	t.Run("Stream", func(t *testing.T) {
		tests := []struct {
			name, in, wantErr string
			good              int
		}{
			{"SyntaxAfterRows", `[{"email":"a@example.com"}, {"email": }]`, "JSON element 2", 1},
			{"Unterminated", `[{"email":"a@example.com"}`, "JSON after element 1", 1},
			{"TrailingData", `[{"email":"a@example.com"}] [`, "data after the closing ']'", 1},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				im, err := NewJSONImporter(strings.NewReader(tt.in), dailyOpts())
				if err != nil {
					t.Fatal(err)
				}
				for i := range tt.good {
					if row, err := im.Next(); err != nil || row.Err != nil {
						t.Fatalf("row %d: %v %v", i+1, err, row.Err)
					}
				}
				_, err = im.Next()
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Next error = %v, want one containing %q", err, tt.wantErr)
				}
				if _, again := im.Next(); again != err {
					t.Errorf("second Next error = %v, want the same %v", again, err)
				}
			})
		}
	})
	t.Run("EmptyArray", func(t *testing.T) {
		if rows := importJSON(t, "\uFEFF[ ]\n", dailyOpts()); len(rows) != 0 {
			t.Errorf("got %d rows from []", len(rows))
		}
	})
}

// FuzzJSONImport checks that the JSON importer never panics, that accepted
// rows hold a normalized address and no CR or LF, and that it ends.
func FuzzJSONImport(f *testing.F) {
	f.Add(`[{"email":"a@example.com","name":"A","topics":["x"],"attrs":{"k":"v"},"n":1}]`)
	f.Add(`[{"email":"b@example.com","lists":{"daily":{"status":"pending"}},"status":"daily:confirmed"}, 3, null]`)
	f.Add(`[{"EMAIL":"c@example.com","send_hour":"7","consent":{"time":"2025-01-01T00:00:00Z","ip":"::1"}}`)
	f.Fuzz(func(t *testing.T, in string) {
		im, err := NewJSONImporter(strings.NewReader(in), dailyOpts())
		if err != nil {
			return
		}
		for i := 0; ; i++ {
			if i > len(in)+2 {
				t.Fatalf("more rows (%d) than the input has bytes", i)
			}
			row, err := im.Next()
			if err != nil {
				return // io.EOF or malformed JSON
			}
			if row.Err != nil {
				continue
			}
			s := row.Subscriber
			if norm, err := NormalizeEmail(s.Email); err != nil || norm != s.Email {
				t.Fatalf("accepted email %q: normalized %q, %v", s.Email, norm, err)
			}
			texts := append([]string{s.Name, s.Timezone, s.Frequency, s.Consent.Source, s.Consent.IP}, s.Topics...)
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
		}
	})
}
