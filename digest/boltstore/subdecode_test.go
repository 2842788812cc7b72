package boltstore

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"newsdigest/subscribers"
)

// subReads are the reads the store makes, and a few more.
var subReads = []subRead{
	readAll,
	{fields: readSendFields, list: "daily", onlyList: true},
	{fields: readSendFields, list: "daily", onlyList: true, key: "ann@example.org"},
	{fields: fEmail | fLists, list: "daily", onlyList: true},
	{fields: 0, list: "daily"},
	{fields: fAll, list: "daily"},
	{fields: fConsent | fCreated | fUpdated | fTopics},
}

// decodeRef is what readSubscriber must return: json.Unmarshal's result,
// trimmed to what r reads, or its error.
func decodeRef(raw []byte, r *subRead) (subscribers.Subscriber, error) {
	var sub subscribers.Subscriber
	if err := json.Unmarshal(raw, &sub); err != nil {
		return subscribers.Subscriber{}, err
	}
	return r.trim(sub), nil
}

// sampleSubscribers are records as the store writes them.
func sampleSubscribers() []subscribers.Subscriber {
	t1 := time.Date(2026, 11, 27, 7, 0, 0, 123456789, time.UTC)
	paris := time.FixedZone("", 3600)
	return []subscribers.Subscriber{
		{},
		{ID: "0123456789abcdef0123456789abcdef", Email: "ann@example.org", Frequency: subscribers.Daily, SendHour: -1,
			Lists: map[string]subscribers.Membership{"daily": {Status: subscribers.Confirmed, Since: t1}}, Created: t1, Updated: t1},
		{ID: "x", Email: "bob@example.org", Name: "Bob Ödön 日本", Timezone: "Europe/Paris", SendHour: 23, Frequency: subscribers.Weekly,
			Lists: map[string]subscribers.Membership{
				"weekly": {Status: subscribers.Confirmed, Since: t1.In(paris)},
				"daily":  {Status: subscribers.Unsubscribed, Since: t1},
				"other":  {Status: "strange"},
			},
			Topics: []string{"daily", "Sport", "économie"}, Attrs: map[string]string{"daily": "confirmed", "weekday": "fri", "": "empty key"},
			Consent: subscribers.Consent{Time: t1, IP: "192.0.2.1", Source: "form"}, Created: t1, Updated: t1.Add(time.Hour)},
		// The list's name where a quick byte filter would find it.
		{Email: "daily@example.org", Name: `"daily":{"status":"confirmed"}`, Lists: map[string]subscribers.Membership{"weekly": {Status: subscribers.Confirmed}}},
		// Strings encoding/json escapes: decoded by encoding/json.
		{Email: "a&b@example.org", Name: "Tom & Jerry <tj>\u2028", Lists: map[string]subscribers.Membership{"d<a>ily": {Status: subscribers.Pending}},
			Attrs: map[string]string{"k\"ey": "v\\al", "tab": "a\tb"}},
		{Email: "c@example.org", Lists: map[string]subscribers.Membership{}, Topics: []string{}, Attrs: map[string]string{}},
		{Email: "d@example.org", Lists: map[string]subscribers.Membership{"daily": {Status: subscribers.Bounced}, "weekly": {Status: subscribers.Complained}}},
	}
}

func TestDecodeSubscriber(t *testing.T) {
	var records []string
	for _, sub := range sampleSubscribers() {
		b, err := json.Marshal(sub)
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, string(b))
		b, _ = json.MarshalIndent(sub, " ", "\t")
		records = append(records, string(b))
	}
	// Records that only encoding/json may read, right or wrong.
	odd := []string{
		``, `null`, ` `, `{`, `}`, `[]`, `"x"`, `{}`, ` {} `, `{} x`, `{}{}`,
		`{"email":"a@example.org",}`, `{"email":"a@example.org" "name":"x"}`, `{"email" "a"}`,
		`{"Email":"a@example.org"}`, `{"EMAIL":"a@example.org","email":"b@example.org"}`,
		`{"email":"a@example.org","email":"b@example.org"}`, `{"unknown":1,"email":"a@example.org"}`,
		`{"email":null}`, `{"email":1}`, `{"name":"\u0041"}`, `{"name":"a\qb"}`, `{"name":"a` + "\x01" + `b"}`,
		`{"name":"\u00"}`, `{"name":"` + "\xff\xfe" + `"}`, `{"email":"` + "\xffa" + `@example.org"}`,
		`{"send_hour":5}`, `{"send_hour":-1}`, `{"send_hour":-0}`, `{"send_hour":05}`, `{"send_hour":5.0}`,
		`{"send_hour":1e1}`, `{"send_hour":99999999999999999999}`, `{"send_hour":"5"}`, `{"send_hour":null}`,
		`{"send_hour":-}`, `{"send_hour":123456789}`, `{"send_hour":1234567890}`,
		`{"frequency":"daily"}`, `{"frequency":"weekly"}`, `{"frequency":"monthly"}`, `{"frequency":"dai\u006cy"}`,
		`{"lists":null}`, `{"lists":{}}`, `{"lists":[]}`, `{"lists":{"daily":null}}`, `{"lists":{"daily":{}}}`,
		`{"lists":{"daily":{"status":"confirmed"},"daily":{"status":"pending"}}}`,
		`{"lists":{"daily":{"status":"confirmed"},"daily":{}}}`,
		`{"lists":{"dai\u006cy":{"status":"confirmed"}}}`, `{"lists":{"` + "\xff" + `":{"status":"confirmed"}}}`,
		`{"lists":{"daily":{"status":"confirmed","status":"pending"}}}`, `{"lists":{"daily":{"Status":"confirmed"}}}`,
		`{"lists":{"daily":{"status":"confirmed","extra":1}}}`, `{"lists":{"daily":{"status":5}}}`,
		`{"lists":{"daily":{"status":"confirmed","since":"2026-11-27T07:00:00Z"}}}`,
		`{"lists":{"daily":{"status":"confirmed","since":"2026-11-27T07:00:00+05:30"}}}`,
		`{"lists":{"daily":{"status":"confirmed","since":"yesterday"}}}`,
		`{"lists":{"daily":{"status":"confirmed","since":"2026-02-30T07:00:00Z"}}}`,
		`{"lists":{"daily":{"status":"confirmed","since":null}}}`,
		`{"lists":{"daily":{"status":"con\u0066irmed"}}}`, `{"lists":{"daily":{"status":"` + "\xff" + `"}}}`,
		`{"topics":null}`, `{"topics":[]}`, `{"topics":["a","b"]}`, `{"topics":["a",]}`, `{"topics":["a" "b"]}`, `{"topics":[1]}`,
		`{"topics":["\u0041"]}`, `{"attrs":null}`, `{"attrs":{}}`, `{"attrs":{"a":"b","a":"c"}}`, `{"attrs":{"a":null}}`, `{"attrs":{"a":1}}`,
		`{"consent":null}`, `{"consent":{}}`, `{"consent":{"ip":"x","source":"form","time":"2026-11-27T07:00:00Z"}}`,
		`{"consent":{"ip":"x","ip":"y"}}`, `{"consent":{"time":"never"}}`, `{"consent":{"IP":"x"}}`, `{"consent":{"other":"x"}}`,
		`{"created":"2026-11-27T07:00:00Z","updated":"2026-11-27T07:00:00.5-01:00"}`, `{"created":"2026-11-27"}`,
		`{"created":"2026-11-27T07:00:00\u005a"}`, `{"created":null}`, `{"created":0}`, `{"updated":"10000-01-01T00:00:00Z"}`,
		` { "email" : "a@example.org" , "lists" : { "daily" : { "status" : "confirmed" } } } `,
		"{\"email\":\"a@example.org\"}\n",
	}
	records = append(records, odd...)
	for i, raw := range records {
		for _, r := range subReads {
			got, err := readSubscriber([]byte("k"), []byte(raw), &r)
			want, werr := decodeRef([]byte(raw), &r)
			if werr != nil {
				werr = fmt.Errorf("boltstore: decode record %q: %w", "k", werr)
				if err == nil || err.Error() != werr.Error() {
					t.Errorf("record %d %q, read %+v: error %v, want %v", i, raw, r, err, werr)
				}
				continue
			}
			if err != nil {
				t.Errorf("record %d %q, read %+v: %v", i, raw, r, err)
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("record %d %q, read %+v:\n got %#v\nwant %#v", i, raw, r, got, want)
			}
		}
	}
	// Records as the store writes them, with no string to unescape,
	// never need encoding/json.
	for i, sub := range sampleSubscribers() {
		if i == 3 || i == 4 {
			continue // escaped strings: below
		}
		raw, _ := json.Marshal(sub)
		for _, r := range subReads {
			var got subscribers.Subscriber
			if !decodeSubscriber(raw, &r, &got) {
				t.Errorf("sample %d %s, read %+v: left to encoding/json", i, raw, r)
			}
		}
	}
}

// TestDecodeSubscriberSkipsEscapes checks that a string the read does
// not fill is only checked, escapes or not.
func TestDecodeSubscriberSkipsEscapes(t *testing.T) {
	raw, _ := json.Marshal(sampleSubscribers()[3])
	r := subRead{fields: fEmail | fLists, list: "daily", onlyList: true}
	var got subscribers.Subscriber
	if !decodeSubscriber(raw, &r, &got) {
		t.Fatalf("%s: left to encoding/json", raw)
	}
	if got.Email != "daily@example.org" || got.Lists != nil || got.Name != "" {
		t.Errorf("%s: got %+v, want only the address", raw, got)
	}
}

// TestDecodeSubscriberNotes checks what decode notes besides the fields:
// the address and the membership of the read's list.
func TestDecodeSubscriberNotes(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		email   string
		emailOK bool
		onList  bool
		status  subscribers.Status
	}{
		{`{"email":"a@example.org","lists":{"daily":{"status":"confirmed"}}}`, "a@example.org", true, true, subscribers.Confirmed},
		{`{"email":"a@example.org","name":"daily","topics":["daily"],"attrs":{"daily":"confirmed"},"lists":{"weekly":{"status":"confirmed"}}}`, "a@example.org", true, false, ""},
		{`{"lists":{"daily":{"status":"pending"},"daily":{"status":"confirmed"}}}`, "", true, true, subscribers.Confirmed},
		{`{"lists":{"daily":{"status":"confirmed"},"daily":{}}}`, "", true, true, ""},
		{`{"email":"a\u0026b@example.org","lists":{"dailyx":{"status":"confirmed"},"xdaily":{"status":"confirmed"}}}`, `a\u0026b@example.org`, false, false, ""},
	} {
		var d subDecoder
		var sub subscribers.Subscriber
		if !d.decode([]byte(tc.raw), &subRead{list: "daily"}, &sub) {
			t.Errorf("%s: left to encoding/json", tc.raw)
			continue
		}
		if string(d.email) != tc.email || d.emailOK != tc.emailOK || d.onList != tc.onList || d.member.Status != tc.status {
			t.Errorf("%s: email %q (ok %v), on list %v, status %q; want %q (%v), %v, %q",
				tc.raw, d.email, d.emailOK, d.onList, d.member.Status, tc.email, tc.emailOK, tc.onList, tc.status)
		}
		if !reflect.DeepEqual(sub, subscribers.Subscriber{}) {
			t.Errorf("%s: filled %+v, want nothing", tc.raw, sub)
		}
	}
}

// FuzzDecodeSubscriber checks that whenever the fast decoder reads a
// record, json.Unmarshal reads it too, to the same fields.
func FuzzDecodeSubscriber(f *testing.F) {
	for _, sub := range sampleSubscribers() {
		b, _ := json.Marshal(sub)
		f.Add(b, "daily")
		f.Add(b, "weekly")
	}
	f.Add([]byte(`{"lists":{"daily":{"status":"confirmed"},"daily":{}},"topics":[],"attrs":{}}`), "daily")
	f.Add([]byte(`{"send_hour":-0,"created":"2026-11-27T07:00:00.5+01:00"}`), "")
	f.Fuzz(func(t *testing.T, raw []byte, list string) {
		reads := append(slices.Clone(subReads),
			subRead{fields: readSendFields, list: list, onlyList: true},
			subRead{fields: fAll, list: list},
			subRead{list: list})
		for _, r := range reads {
			var d subDecoder
			var got subscribers.Subscriber
			if !d.decode(raw, &r, &got) {
				continue
			}
			var full subscribers.Subscriber
			if err := json.Unmarshal(raw, &full); err != nil {
				t.Fatalf("read %+v of %q: decoded, but json.Unmarshal: %v", r, raw, err)
			}
			if want := r.trim(full); !reflect.DeepEqual(got, want) {
				t.Fatalf("read %+v of %q:\n got %#v\nwant %#v", r, raw, got, want)
			}
			if d.emailOK && string(d.email) != full.Email {
				t.Fatalf("read %+v of %q: noted email %q, want %q", r, raw, d.email, full.Email)
			}
			if r.list != "" {
				m, ok := full.Lists[r.list]
				if d.onList != ok || d.member != m {
					t.Fatalf("read %+v of %q: noted membership %v %+v, want %v %+v", r, raw, d.onList, d.member, ok, m)
				}
			}
		}
	})
}

// BenchmarkReadSubscriber compares json.Unmarshal of a whole record with
// the reads the store makes: "all" (getSubscriber), "send"
// (PendingRecipients) and "confirmed" (ConfirmedEmails: the address and
// one membership), on a record like the bench's and on one with consent,
// attributes and two lists.
func BenchmarkReadSubscriber(b *testing.B) {
	t1 := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	plainSub := subscribers.Subscriber{ID: "0123456789abcdef0123456789abcdef", Email: "reader0000001@example1.org", Name: "Reader 1",
		SendHour: -1, Frequency: subscribers.Daily, Created: t1, Updated: t1}
	plainSub.SetStatus("daily", subscribers.Confirmed, t1)
	richSub := plainSub
	richSub.Lists = map[string]subscribers.Membership{"daily": {Status: subscribers.Confirmed, Since: t1}, "weekly": {Status: subscribers.Unsubscribed, Since: t1}}
	richSub.Timezone, richSub.Topics, richSub.Attrs = "Europe/Paris", []string{"sport", "politics"}, map[string]string{"weekday": "fri", "city": "Brest"}
	richSub.Consent = subscribers.Consent{Time: t1, IP: "192.0.2.1", Source: "form"}
	for _, rec := range []struct {
		name string
		sub  subscribers.Subscriber
	}{{"plain", plainSub}, {"rich", richSub}} {
		raw, _ := json.Marshal(rec.sub)
		key := []byte(rec.sub.Email)
		b.Run(rec.name+"/json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var sub subscribers.Subscriber
				if err := json.Unmarshal(raw, &sub); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, r := range []struct {
			name string
			r    subRead
		}{
			{"all", readAll},
			{"send", subRead{fields: readSendFields, list: "daily", onlyList: true, key: rec.sub.Email}},
		} {
			b.Run(rec.name+"/"+r.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := readSubscriber(key, raw, &r.r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(rec.name+"/confirmed", func(b *testing.B) {
			q := SubscriberQuery{List: "daily", Status: subscribers.Confirmed}
			_, exact, _ := subscriberFilter(q)
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, err := matchSubscriber(key, raw, q, exact); err != nil || !ok {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
