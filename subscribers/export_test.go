package subscribers

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var since = time.Date(2025, 5, 4, 3, 2, 1, 0, time.UTC)

func sampleSubs() []Subscriber {
	return []Subscriber{
		{
			ID:    "3f2a9c0b7e5d41a8b6c4d2e0f1a3b5c7",
			Email: "ada@example.com",
			Name:  "Ada Lovelace",
			Lists: map[string]Membership{
				"daily":  {Confirmed, since},
				"weekly": {Unsubscribed, since},
			},
			Timezone:  "Europe/London",
			SendHour:  7,
			Frequency: Daily,
			Topics:    []string{"science", "business"},
			Attrs:     map[string]string{"company": "Analytical, \"Engines\" Ltd", "plan": "gold"},
			Consent:   Consent{Time: since, IP: "192.0.2.1", Source: "form"},
			Created:   since,
			Updated:   since,
		},
		{
			ID:        "00000000000000000000000000000001",
			Email:     "=cmd@example.com",
			Name:      "=HYPERLINK(\"http://evil.example\",\"click\")",
			Lists:     map[string]Membership{"daily": {Pending, since}},
			SendHour:  -1,
			Frequency: Weekly,
			Topics:    []string{"-minus", "@at", "ok"},
			Attrs:     map[string]string{"note": "+1 555 0100", "zip": "@SUM(1)"},
			Consent:   Consent{Time: since, Source: "import"},
			Created:   since,
			Updated:   since,
		},
		{
			ID:        "00000000000000000000000000000002",
			Email:     "zero@example.org",
			Name:      "-Zero Hour",
			Lists:     map[string]Membership{},
			SendHour:  0,
			Frequency: Daily,
			Consent:   Consent{Time: since, Source: "cli"},
			Created:   since,
			Updated:   since,
		},
	}
}

func TestWriteCSV(t *testing.T) {
	t.Run("List", func(t *testing.T) {
		var b bytes.Buffer
		if err := WriteCSV(&b, sampleSubs(), "daily"); err != nil {
			t.Fatal(err)
		}
		want := "email,name,status,timezone,send_hour,frequency,topics,company,note,plan,zip\n" +
			"ada@example.com,Ada Lovelace,confirmed,Europe/London,7,daily,science;business,\"Analytical, \"\"Engines\"\" Ltd\",,gold,\n" +
			"'=cmd@example.com,\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\",pending,,,weekly,'-minus;@at;ok,,'+1 555 0100,,'@SUM(1)\n" +
			"zero@example.org,'-Zero Hour,,,0,daily,,,,,\n"
		if got := b.String(); got != want {
			t.Errorf("got:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("AllLists", func(t *testing.T) {
		var b bytes.Buffer
		if err := WriteCSV(&b, sampleSubs()[:1], ""); err != nil {
			t.Fatal(err)
		}
		rec, err := csv.NewReader(&b).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := rec[1][2], "daily:confirmed;weekly:unsubscribed"; got != want {
			t.Errorf("status = %q, want %q", got, want)
		}
	})
	t.Run("NoSubscribers", func(t *testing.T) {
		var b bytes.Buffer
		if err := WriteCSV(&b, nil, "daily"); err != nil {
			t.Fatal(err)
		}
		if got, want := b.String(), "email,name,status,timezone,send_hour,frequency,topics\n"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

func TestEscapeCell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"=1+1", "'=1+1"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"a=1", "a=1"},
		{"'=x", "'=x"},
		{"", ""},
		{"plain", "plain"},
	}
	for _, tt := range tests {
		if got := escapeCell(tt.in); got != tt.want {
			t.Errorf("escapeCell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCSVWriter(t *testing.T) {
	t.Run("StreamingKeysGiven", func(t *testing.T) {
		var b bytes.Buffer
		w := NewCSVWriter(&b, "daily", []string{"plan"})
		for _, s := range sampleSubs() {
			if err := w.Write(s); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(b.String()), "\n")
		if got, want := lines[0], "email,name,status,timezone,send_hour,frequency,topics,plan"; got != want {
			t.Errorf("header = %q, want %q", got, want)
		}
		if got, want := len(lines), 4; got != want {
			t.Errorf("%d lines, want %d", got, want)
		}
	})
	t.Run("BadKeys", func(t *testing.T) {
		for _, keys := range [][]string{{"Email"}, {"status"}, {""}, {"plan", "Plan"}} {
			var b bytes.Buffer
			w := NewCSVWriter(&b, "", keys)
			if err := w.Write(sampleSubs()[0]); err == nil {
				t.Errorf("keys %q: Write succeeded", keys)
			}
			if err := w.Flush(); err == nil {
				t.Errorf("keys %q: Flush succeeded", keys)
			}
			if b.Len() != 0 {
				t.Errorf("keys %q: wrote %q", keys, b.String())
			}
		}
	})
	t.Run("WriteError", func(t *testing.T) {
		boom := errors.New("pipe closed")
		w := NewCSVWriter(errWriter{boom}, "", nil)
		var err error
		for range 2000 { // enough to overflow the buffer
			if err = w.Write(sampleSubs()[0]); err != nil {
				break
			}
		}
		if err == nil {
			err = w.Flush()
		}
		if !errors.Is(err, boom) {
			t.Fatalf("error = %v, want %v", err, boom)
		}
	})
	t.Run("AttrKeys", func(t *testing.T) {
		if got, want := AttrKeys(sampleSubs()), []string{"company", "note", "plan", "zip"}; !reflect.DeepEqual(got, want) {
			t.Errorf("AttrKeys = %q, want %q", got, want)
		}
	})
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteJSON(t *testing.T) {
	t.Run("Empty", func(t *testing.T) {
		var b bytes.Buffer
		if err := WriteJSON(&b, nil); err != nil {
			t.Fatal(err)
		}
		if got, want := b.String(), "[]\n"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("SameAsMarshalIndent", func(t *testing.T) {
		subs := sampleSubs()
		var b bytes.Buffer
		if err := WriteJSON(&b, subs); err != nil {
			t.Fatal(err)
		}
		want, err := json.MarshalIndent(subs, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if got := b.String(); got != string(want)+"\n" {
			t.Errorf("got:\n%s\nwant:\n%s", got, want)
		}
		var back []Subscriber
		if err := json.Unmarshal(b.Bytes(), &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, subs) {
			t.Errorf("decoded %+v, want %+v", back, subs)
		}
	})
	t.Run("ClosedWriter", func(t *testing.T) {
		var b bytes.Buffer
		j := NewJSONWriter(&b)
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		if err := j.Write(sampleSubs()[0]); err == nil {
			t.Error("Write after Close succeeded")
		}
	})
}

// portable is what an export carries and an import restores.
type portable struct {
	Email, Name, Timezone, Frequency string
	SendHour                         int
	Topics                           []string
	Attrs                            map[string]string
	Statuses                         map[string]Status
}

func portableOf(s Subscriber) portable {
	p := portable{Email: s.Email, Name: s.Name, Timezone: s.Timezone, Frequency: s.Frequency,
		SendHour: s.SendHour, Topics: s.Topics, Attrs: s.Attrs, Statuses: map[string]Status{}}
	for l, m := range s.Lists {
		p.Statuses[l] = m.Status
	}
	return p
}

func TestExportImportRoundTrip(t *testing.T) {
	subs := sampleSubs()
	t.Run("CSVAllLists", func(t *testing.T) {
		var b bytes.Buffer
		if err := WriteCSV(&b, subs, ""); err != nil {
			t.Fatal(err)
		}
		rows := importCSV(t, b.String(), ImportOptions{Now: importNow})
		if len(rows) != len(subs) {
			t.Fatalf("%d rows back, want %d", len(rows), len(subs))
		}
		for i, r := range rows {
			if r.Err != nil {
				t.Fatalf("line %d: %v\n%s", r.Line, r.Err, b.String())
			}
			if len(r.Warnings) != 0 {
				t.Errorf("line %d: re-import of an export warns: %v", r.Line, r.Warnings)
			}
			if got, want := portableOf(r.Subscriber), portableOf(subs[i]); !reflect.DeepEqual(got, want) {
				t.Errorf("subscriber %d:\ngot  %+v\nwant %+v", i, got, want)
			}
		}
	})
	t.Run("CSVOneList", func(t *testing.T) {
		var b bytes.Buffer
		if err := WriteCSV(&b, subs[:2], "daily"); err != nil {
			t.Fatal(err)
		}
		rows := importCSV(t, b.String(), ImportOptions{Lists: []string{"daily"}, Status: Confirmed, Now: importNow})
		for i, r := range rows {
			if r.Err != nil {
				t.Fatalf("line %d: %v", r.Line, r.Err)
			}
			want := portableOf(subs[i])
			want.Statuses = map[string]Status{"daily": subs[i].StatusOn("daily")}
			if got := portableOf(r.Subscriber); !reflect.DeepEqual(got, want) {
				t.Errorf("subscriber %d:\ngot  %+v\nwant %+v", i, got, want)
			}
		}
		// The pending subscriber stays pending although the import says Confirmed.
		if got := rows[1].Subscriber.StatusOn("daily"); got != Pending {
			t.Errorf("status after round trip = %q, want pending", got)
		}
	})
	t.Run("JSON", func(t *testing.T) {
		var b bytes.Buffer
		if err := WriteJSON(&b, subs); err != nil {
			t.Fatal(err)
		}
		rows := importJSON(t, b.String(), ImportOptions{Now: importNow})
		if len(rows) != len(subs) {
			t.Fatalf("%d rows back, want %d", len(rows), len(subs))
		}
		for i, r := range rows {
			if r.Err != nil {
				t.Fatalf("element %d: %v", r.Line, r.Err)
			}
			got := r.Subscriber
			// The store owns ID, Created and Updated; everything else comes back.
			got.ID, got.Created, got.Updated = subs[i].ID, subs[i].Created, subs[i].Updated
			if !reflect.DeepEqual(normTimes(got), normTimes(subs[i])) {
				t.Errorf("subscriber %d:\ngot  %+v\nwant %+v", i, got, subs[i])
			}
		}
	})
}

// normTimes returns s with its times in UTC so that DeepEqual compares
// instants.
func normTimes(s Subscriber) Subscriber {
	s.Consent.Time = s.Consent.Time.UTC()
	lists := make(map[string]Membership, len(s.Lists))
	for l, m := range s.Lists {
		m.Since = m.Since.UTC()
		lists[l] = m
	}
	s.Lists = lists
	return s
}
