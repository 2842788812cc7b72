package bounce

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"newsdigest/digest/boltstore"
	"newsdigest/subscribers"
)

var (
	testSecret = []byte("0123456789abcdef0123456789abcdef")
	t0         = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
)

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }

// openStore opens a real store with the subscribers the testdata tokens
// name, and checks the file when the test ends.
func openStore(t *testing.T) *boltstore.Store {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "newsdigest.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Check(); err != nil {
			t.Error(err)
		}
		st.Close()
	})
	both := map[string]subscribers.Membership{"daily": {Status: subscribers.Confirmed}, "weekly": {Status: subscribers.Confirmed}}
	for id, email := range map[string]string{
		"a1b2c3d4e5f60718293a4b5c6d7e8f90": "ann@mail.example.net",
		"b1b2c3d4e5f60718293a4b5c6d7e8f90": "bob@full.example.com",
		"c1b2c3d4e5f60718293a4b5c6d7e8f90": "cara@corp.example.com",
		"d1b2c3d4e5f60718293a4b5c6d7e8f90": "dan.nobody@gmail.example",
	} {
		if err := st.PutSubscriber(subscribers.Subscriber{ID: id, Email: email, Lists: both, Frequency: "daily"}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func newProcessor(t *testing.T, st Store) (*Processor, *fixedClock, map[Kind]int) {
	signer, err := subscribers.NewSigner(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fixedClock{t0}
	seen := map[Kind]int{}
	return &Processor{Store: st, Signer: signer, Clock: clock, SoftLimit: 3, SoftWindow: 7 * 24 * time.Hour,
		Observe: func(k Kind) { seen[k]++ }}, clock, seen
}

func process(t *testing.T, p *Processor, file string) []Outcome {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	outs, err := p.Process(bytes.NewReader(raw), file)
	if err != nil {
		t.Fatal(err)
	}
	return outs
}

func TestProcessHard(t *testing.T) {
	st := openStore(t)
	p, _, seen := newProcessor(t, st)
	outs := process(t, p, "exchange-hard.eml")
	if len(outs) != 1 {
		t.Fatalf("outcomes = %+v", outs)
	}
	o := outs[0]
	if o.Kind != Hard || o.Email != "cara@corp.example.com" || !o.Suppressed || o.List != "daily" || o.Edition != "daily-20261127-0700" {
		t.Errorf("outcome = %+v", o)
	}
	if reason, ok, _ := st.Suppressed("cara@corp.example.com"); !ok || !strings.Contains(reason, "5.1.10") {
		t.Errorf("suppressed = %v (%q)", ok, reason)
	}
	sub, _ := st.GetSubscriber("cara@corp.example.com")
	if sub.StatusOn("daily") != subscribers.Bounced || sub.StatusOn("weekly") != subscribers.Bounced {
		t.Errorf("statuses = %v", sub.Lists)
	}
	evs, _ := st.Events("cara@corp.example.com")
	if len(evs) != 1 || evs[0].Kind != subscribers.EventHardBounce || evs[0].Edition != "daily-20261127-0700" || evs[0].Source != "exchange-hard.eml" {
		t.Errorf("events = %+v", evs)
	}
	if seen[Hard] != 1 {
		t.Errorf("observed %v", seen)
	}
}

func TestProcessSoftAfterRepeats(t *testing.T) {
	st := openStore(t)
	p, clock, _ := newProcessor(t, st)
	// Two soft bounces, then a third outside the window: still counted
	// as the second within it.
	for i, at := range []time.Duration{0, 24 * time.Hour, 9 * 24 * time.Hour} {
		clock.t = t0.Add(at)
		outs := process(t, p, "postfix-delayed.eml")
		if outs[0].Kind != Soft || outs[0].Suppressed {
			t.Fatalf("bounce %d: %+v, want a counted soft bounce", i+1, outs[0])
		}
	}
	// Two more within the window of the last one: the limit is reached.
	clock.t = t0.Add(9*24*time.Hour + time.Hour)
	if outs := process(t, p, "postfix-delayed.eml"); outs[0].Suppressed {
		t.Fatalf("suppressed at 2 of 3: %+v", outs[0])
	}
	clock.t = t0.Add(9*24*time.Hour + 2*time.Hour)
	outs := process(t, p, "postfix-delayed.eml")
	if !outs[0].Suppressed || !strings.Contains(outs[0].Action, "3 soft bounces") {
		t.Fatalf("third soft bounce in the window: %+v", outs[0])
	}
	if _, ok, _ := st.Suppressed("bob@full.example.com"); !ok {
		t.Error("not suppressed")
	}
	if sub, _ := st.GetSubscriber("bob@full.example.com"); sub.StatusOn("daily") != subscribers.Bounced {
		t.Errorf("status = %s", sub.StatusOn("daily"))
	}
	if evs, _ := st.Events("bob@full.example.com"); len(evs) != 5 {
		t.Errorf("%d events, want 5", len(evs))
	}
}

func TestProcessComplaint(t *testing.T) {
	st := openStore(t)
	p, _, _ := newProcessor(t, st)
	outs := process(t, p, "yahoo-arf.eml")
	// The token names ann@mail.example.net (the address the digest went
	// to); the report's own recipient is a forwarding address.
	o := outs[0]
	if o.Kind != Complaint || o.Email != "ann@mail.example.net" || !o.Suppressed || o.List != "daily" {
		t.Fatalf("outcome = %+v", o)
	}
	sub, _ := st.GetSubscriber("ann@mail.example.net")
	if sub.StatusOn("daily") != subscribers.Complained || sub.StatusOn("weekly") != subscribers.Confirmed {
		t.Errorf("statuses = %v: want complained on the list the message came from only", sub.Lists)
	}
	if _, ok, _ := st.Suppressed("ann@mail.example.net"); !ok {
		t.Error("not suppressed")
	}
}

func TestProcessOther(t *testing.T) {
	st := openStore(t)
	p, _, seen := newProcessor(t, st)
	for _, f := range []string{"autoreply.eml", "garbage.eml", "broken-report.eml"} {
		outs := process(t, p, f)
		if len(outs) != 1 || outs[0].Kind != Other || !strings.HasPrefix(outs[0].Action, "kept aside") {
			t.Errorf("%s: %+v", f, outs)
		}
	}
	if seen[Other] != 3 {
		t.Errorf("observed %v", seen)
	}
	if sups, _ := st.Suppressions(); len(sups) != 0 {
		t.Errorf("suppressed %v", sups)
	}
}

func TestProcessWithoutToken(t *testing.T) {
	st := openStore(t)
	p, _, _ := newProcessor(t, st)
	p.Signer = nil // tokens unreadable: the report's recipient is used
	outs := process(t, p, "gmail-hard.eml")
	if outs[0].Kind != Hard || outs[0].Email != "dan.nobody@gmail.example" || outs[0].Edition != "" {
		t.Errorf("outcome = %+v", outs[0])
	}
	if _, ok, _ := st.Suppressed("dan.nobody@gmail.example"); !ok {
		t.Error("not suppressed")
	}

	t.Run("RequireToken", func(t *testing.T) {
		p.RequireToken = true
		outs := process(t, p, "postfix-hard.eml")
		if outs[0].Kind != Other || !strings.Contains(outs[0].Action, "without a valid VERP token") {
			t.Errorf("outcome = %+v", outs[0])
		}
		if _, ok, _ := st.Suppressed("ann@mail.example.net"); ok {
			t.Error("suppressed on an untrusted report")
		}
	})
	t.Run("ForgedToken", func(t *testing.T) {
		other, _ := subscribers.NewSigner(bytes.Repeat([]byte("z"), 32))
		p.Signer, p.RequireToken = other, true
		outs := process(t, p, "postfix-hard.eml")
		if outs[0].Kind != Other {
			t.Errorf("forged token accepted: %+v", outs[0])
		}
	})
}
