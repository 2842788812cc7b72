package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"newsdigest/subscribers"
)

// Subscriber records are JSON, as encoding/json writes a
// subscribers.Subscriber. Reading them is most of what queueing an
// edition and feeding its workers cost, so records are read by
// decodeSubscriber, a decoder for exactly that shape which fills only the
// fields its caller asks for; anything it does not know for sure (an
// escaped or non-UTF-8 string it must copy, an unknown or repeated key, a
// null, a number that is not a plain integer, a time its field would
// refuse, bad syntax) makes it give up, and the record is decoded by
// encoding/json instead, so results and errors are those of
// json.Unmarshal. FuzzDecodeSubscriber holds it to that.

// subField names the fields of a subscriber record.
type subField uint16

const (
	fID subField = 1 << iota
	fEmail
	fName
	fLists
	fTimezone
	fSendHour
	fFrequency
	fTopics
	fAttrs
	fConsent
	fCreated
	fUpdated

	fAll = fID | fEmail | fName | fLists | fTimezone | fSendHour | fFrequency | fTopics | fAttrs | fConsent | fCreated | fUpdated
)

// subRead says what readSubscriber fills.
type subRead struct {
	// fields are the fields filled; the others stay zero (their values
	// are still checked as json.Unmarshal would, so a record that it
	// refuses is refused whatever is read of it).
	fields subField
	// list, when onlyList is set, keeps only the membership of this
	// list: Lists is nil unless the record has one for it (then it is
	// the only entry).
	list     string
	onlyList bool
	// key is the record's key: an Email equal to it shares its string.
	key string
}

// Send-path reads.
var (
	// readAll is what getSubscriber returns: the whole record.
	readAll = subRead{fields: fAll}
)

// readSendFields are what a sender uses of a subscriber (see
// PendingRecipients): everything but Consent, Created, Updated.
const readSendFields = fAll &^ (fConsent | fCreated | fUpdated)

// readSubscriber decodes raw, the record stored under key, as r says:
// json.Unmarshal's result with the fields r does not read left zero (and
// Lists kept to r.list when r.onlyList), or json.Unmarshal's error
// wrapped as getJSON wraps it.
func readSubscriber(key, raw []byte, r *subRead) (subscribers.Subscriber, error) {
	var sub subscribers.Subscriber
	if decodeSubscriber(raw, r, &sub) {
		return sub, nil
	}
	sub = subscribers.Subscriber{}
	if err := json.Unmarshal(raw, &sub); err != nil {
		return subscribers.Subscriber{}, fmt.Errorf("boltstore: decode record %q: %w", key, err)
	}
	return r.trim(sub), nil
}

// trim zeroes the fields r does not read and drops the memberships it
// does not keep.
func (r *subRead) trim(sub subscribers.Subscriber) subscribers.Subscriber {
	f := r.fields
	if f&fID == 0 {
		sub.ID = ""
	}
	if f&fEmail == 0 {
		sub.Email = ""
	}
	if f&fName == 0 {
		sub.Name = ""
	}
	if f&fLists == 0 {
		sub.Lists = nil
	} else if r.onlyList {
		m, ok := sub.Lists[r.list]
		sub.Lists = nil
		if ok {
			sub.Lists = map[string]subscribers.Membership{r.list: m}
		}
	}
	if f&fTimezone == 0 {
		sub.Timezone = ""
	}
	if f&fSendHour == 0 {
		sub.SendHour = 0
	}
	if f&fFrequency == 0 {
		sub.Frequency = ""
	}
	if f&fTopics == 0 {
		sub.Topics = nil
	}
	if f&fAttrs == 0 {
		sub.Attrs = nil
	}
	if f&fConsent == 0 {
		sub.Consent = subscribers.Consent{}
	}
	if f&fCreated == 0 {
		sub.Created = time.Time{}
	}
	if f&fUpdated == 0 {
		sub.Updated = time.Time{}
	}
	return sub
}

// subDecoder walks one record. Besides the fields it fills, it notes
// the record's address and its membership of the subRead's list.
type subDecoder struct {
	b []byte
	i int

	email   []byte // the "email" string's bytes, when plain
	emailOK bool   // email is what json.Unmarshal gives: plain, or no "email" key
	member  subscribers.Membership
	onList  bool // the record has a membership of the subRead's list (member)
}

// decodeSubscriber fills sub (zero) from raw as r says and reports
// whether it could; false leaves sub in any state.
func decodeSubscriber(raw []byte, r *subRead, sub *subscribers.Subscriber) bool {
	var d subDecoder
	return d.decode(raw, r, sub)
}

// decode is decodeSubscriber; d's notes are valid when it returns true.
func (d *subDecoder) decode(raw []byte, r *subRead, sub *subscribers.Subscriber) bool {
	*d = subDecoder{b: raw, emailOK: true}
	d.ws()
	var seen subField
	ok := d.object(func(key []byte) bool {
		f := fieldOf(key)
		if f == 0 || seen&f != 0 {
			return false // unknown (or differently spelled) or repeated
		}
		seen |= f
		return d.field(f, r.fields&f != 0, r, sub)
	})
	return ok && d.end()
}

// field reads the value of the record's field f, into sub when want.
func (d *subDecoder) field(f subField, want bool, r *subRead, sub *subscribers.Subscriber) bool {
	ok := false
	switch f {
	case fID:
		ok = d.strField(want, &sub.ID)
	case fEmail:
		var s []byte
		var esc bool
		if s, esc, ok = d.str(); ok {
			d.email, d.emailOK = s, plain(s, esc)
			switch {
			case !want:
			case !d.emailOK:
				return false
			case r.key != "" && string(s) == r.key:
				sub.Email = r.key
			default:
				sub.Email = string(s)
			}
		}
	case fName:
		ok = d.strField(want, &sub.Name)
	case fTimezone:
		ok = d.strField(want, &sub.Timezone)
	case fFrequency:
		ok = d.freqField(want, &sub.Frequency)
	case fSendHour:
		var n int
		n, ok = d.int()
		if want {
			sub.SendHour = n
		}
	case fLists:
		ok = d.lists(want, r, sub)
	case fTopics:
		ok = d.topics(want, sub)
	case fAttrs:
		ok = d.attrs(want, sub)
	case fConsent:
		ok = d.consent(want, &sub.Consent)
	case fCreated:
		ok = d.timeField(want, &sub.Created)
	case fUpdated:
		ok = d.timeField(want, &sub.Updated)
	}
	return ok
}

func fieldOf(key []byte) subField {
	switch string(key) {
	case "id":
		return fID
	case "email":
		return fEmail
	case "name":
		return fName
	case "lists":
		return fLists
	case "timezone":
		return fTimezone
	case "send_hour":
		return fSendHour
	case "frequency":
		return fFrequency
	case "topics":
		return fTopics
	case "attrs":
		return fAttrs
	case "consent":
		return fConsent
	case "created":
		return fCreated
	case "updated":
		return fUpdated
	}
	return 0
}

// end reports whether only white space follows.
func (d *subDecoder) end() bool {
	d.ws()
	return d.i == len(d.b)
}

func (d *subDecoder) ws() {
	for d.i < len(d.b) && d.b[d.i] <= ' ' {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *subDecoder) eat(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// str reads a string and returns its bytes between the quotes, whether
// it holds escapes (then they are not decoded), and whether it is valid
// JSON.
func (d *subDecoder) str() (s []byte, escaped, ok bool) {
	if !d.eat('"') {
		return nil, false, false
	}
	start := d.i
	// Most strings hold no escape: find the closing quote at once.
	if q := bytes.IndexByte(d.b[start:], '"'); q >= 0 {
		s = d.b[start : start+q]
		if bytes.IndexByte(s, '\\') < 0 {
			if hasControl(s) {
				return nil, false, false
			}
			d.i = start + q + 1
			return s, false, true
		}
	}
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s = d.b[start:d.i]
			d.i++
			return s, escaped, true
		case c == '\\':
			escaped = true
			if d.i+1 >= len(d.b) {
				return nil, false, false
			}
			switch d.b[d.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.i += 2
			case 'u':
				if d.i+6 > len(d.b) {
					return nil, false, false
				}
				for _, h := range d.b[d.i+2 : d.i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return nil, false, false
					}
				}
				d.i += 6
			default:
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		default:
			d.i++
		}
	}
	return nil, false, false
}

// hasControl reports whether s holds a byte below 0x20, which a JSON
// string may not hold unescaped.
func hasControl(s []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(s) >= 8 {
		// A byte below 0x20 borrows in x-0x20…, its high bit clear.
		x := binary.LittleEndian.Uint64(s)
		if (x-0x20*ones)&^x&highs != 0 {
			return true
		}
		s = s[8:]
	}
	for _, c := range s {
		if c < 0x20 {
			return true
		}
	}
	return false
}

// plain reports whether a string's bytes decode to themselves: no
// escapes, valid UTF-8 (json.Unmarshal replaces invalid bytes).
func plain(s []byte, escaped bool) bool {
	if escaped {
		return false
	}
	for _, c := range s {
		if c >= utf8.RuneSelf {
			return utf8.Valid(s)
		}
	}
	return true
}

// strField reads a string, into *dst when want.
func (d *subDecoder) strField(want bool, dst *string) bool {
	s, esc, ok := d.str()
	if !ok || !want {
		return ok
	}
	if !plain(s, esc) {
		return false
	}
	*dst = string(s)
	return true
}

func (d *subDecoder) freqField(want bool, dst *string) bool {
	s, esc, ok := d.str()
	if !ok || !want {
		return ok
	}
	switch {
	case esc:
		return false
	case string(s) == subscribers.Daily:
		*dst = subscribers.Daily
	case string(s) == subscribers.Weekly:
		*dst = subscribers.Weekly
	case !plain(s, esc):
		return false
	default:
		*dst = string(s)
	}
	return true
}

// int reads a JSON integer that fits an int without question.
func (d *subDecoder) int() (int, bool) {
	neg := d.eat('-')
	start := d.i
	n := 0
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		n = n*10 + int(d.b[d.i]-'0')
		d.i++
	}
	digits := d.i - start
	if digits == 0 || digits > 9 || (digits > 1 && d.b[start] == '0') {
		return 0, false
	}
	if d.i < len(d.b) {
		switch d.b[d.i] {
		case '.', 'e', 'E':
			return 0, false // a float: json.Unmarshal refuses it for an int
		}
	}
	if neg {
		n = -n
	}
	return n, true
}

// timeField reads a time as json.Unmarshal does: the raw string, quotes
// included, through time.Time.UnmarshalJSON. A time it refuses makes the
// record json.Unmarshal's to report.
func (d *subDecoder) timeField(want bool, dst *time.Time) bool {
	start := d.i
	if _, _, ok := d.str(); !ok {
		return false
	}
	var t time.Time
	if err := t.UnmarshalJSON(d.b[start:d.i]); err != nil {
		return false
	}
	if want {
		*dst = t
	}
	return true
}

func (d *subDecoder) status(dst *subscribers.Status) bool {
	s, esc, ok := d.str()
	if !ok || esc {
		return false
	}
	switch string(s) {
	case string(subscribers.Confirmed):
		*dst = subscribers.Confirmed
	case string(subscribers.Pending):
		*dst = subscribers.Pending
	case string(subscribers.Unsubscribed):
		*dst = subscribers.Unsubscribed
	case string(subscribers.Bounced):
		*dst = subscribers.Bounced
	case string(subscribers.Complained):
		*dst = subscribers.Complained
	default:
		if !plain(s, esc) {
			return false
		}
		*dst = subscribers.Status(s)
	}
	return true
}

// object walks a JSON object, calling fn at each value with its key
// (undecoded: escaped keys make it give up) and reports whether the
// object was read. fn reads the value.
func (d *subDecoder) object(fn func(key []byte) bool) bool {
	if !d.eat('{') {
		return false
	}
	d.ws()
	if d.eat('}') {
		return true
	}
	for {
		d.ws()
		key, esc, ok := d.str()
		if !ok || esc {
			return false
		}
		d.ws()
		if !d.eat(':') {
			return false
		}
		d.ws()
		if !fn(key) {
			return false
		}
		d.ws()
		if d.eat(',') {
			continue
		}
		return d.eat('}')
	}
}

func (d *subDecoder) isNull() bool {
	if bytes.HasPrefix(d.b[d.i:], []byte("null")) {
		d.i += 4
		return true
	}
	return false
}

// lists reads the memberships: null (no map) or an object of
// memberships, each {"status": …, "since": …} with either key optional.
func (d *subDecoder) lists(want bool, r *subRead, sub *subscribers.Subscriber) bool {
	if d.isNull() {
		return true
	}
	if want && !r.onlyList {
		sub.Lists = map[string]subscribers.Membership{}
	}
	return d.object(func(key []byte) bool {
		var m subscribers.Membership
		var seen uint8
		ok := d.object(func(k []byte) bool {
			switch string(k) {
			case "status":
				if seen&1 != 0 {
					return false
				}
				seen |= 1
				return d.status(&m.Status)
			case "since":
				if seen&2 != 0 {
					return false
				}
				seen |= 2
				return d.timeField(true, &m.Since)
			}
			return false
		})
		if !ok {
			return false
		}
		if (want || r.list != "") && !plain(key, false) {
			return false // json.Unmarshal would replace its bad bytes
		}
		if r.list != "" && string(key) == r.list {
			// A repeated key replaces the earlier one, as in
			// json.Unmarshal.
			d.member, d.onList = m, true
		}
		switch {
		case !want:
		case r.onlyList:
			if string(key) == r.list {
				sub.Lists = map[string]subscribers.Membership{r.list: m}
			}
		default:
			name := string(key)
			if name == r.list {
				name = r.list
			}
			sub.Lists[name] = m
		}
		return true
	})
}

// topics reads an array of strings; [] is an empty, non-nil slice, as
// json.Unmarshal makes it.
func (d *subDecoder) topics(want bool, sub *subscribers.Subscriber) bool {
	if !d.eat('[') {
		return false
	}
	var out []string
	if want {
		out = []string{}
	}
	d.ws()
	if !d.eat(']') {
		for {
			d.ws()
			s, esc, ok := d.str()
			if !ok {
				return false
			}
			if want {
				if !plain(s, esc) {
					return false
				}
				out = append(out, string(s))
			}
			d.ws()
			if d.eat(',') {
				continue
			}
			if !d.eat(']') {
				return false
			}
			break
		}
	}
	sub.Topics = out
	return true
}

// attrs reads an object of strings; {} is an empty, non-nil map.
func (d *subDecoder) attrs(want bool, sub *subscribers.Subscriber) bool {
	if want {
		sub.Attrs = map[string]string{}
	}
	return d.object(func(key []byte) bool {
		s, esc, ok := d.str()
		if !ok || !want {
			return ok
		}
		if !plain(key, false) || !plain(s, esc) {
			return false
		}
		sub.Attrs[string(key)] = string(s)
		return true
	})
}

// consent reads {"time": …, "ip": …, "source": …}, each optional.
func (d *subDecoder) consent(want bool, c *subscribers.Consent) bool {
	var seen uint8
	return d.object(func(k []byte) bool {
		var bit uint8
		var ok bool
		switch string(k) {
		case "time":
			bit, ok = 1, d.timeField(want, &c.Time)
		case "ip":
			bit, ok = 2, d.strField(want, &c.IP)
		case "source":
			bit, ok = 4, d.strField(want, &c.Source)
		}
		if bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		return ok
	})
}
