package delivery_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"newsdigest/digest"
	"newsdigest/digest/delivery"
	"newsdigest/digest/mailer"
	"newsdigest/subscribers"
)

// addSubscribers adds confirmed subscribers with the given addresses.
func (f *fixture) addSubscribers(t *testing.T, emails []string) {
	t.Helper()
	var rows []subscribers.Row
	for _, e := range emails {
		sub := subscribers.Subscriber{Email: e, SendHour: -1, Frequency: subscribers.Daily}
		sub.SetStatus("daily", subscribers.Confirmed, now)
		rows = append(rows, subscribers.Row{Subscriber: sub})
	}
	if _, _, _, err := f.store.UpsertSubscribers(rows, false); err != nil {
		t.Fatal(err)
	}
	f.emails = append(f.emails, emails...)
}

func TestDeliverPausesWhenFailuresPassTheThreshold(t *testing.T) {
	f := setup(t, 400, 4)
	var mu sync.Mutex
	tried := 0
	f.srv.SetReply(func(_, to string) error {
		mu.Lock()
		defer mu.Unlock()
		tried++
		if tried > 60 { // the relay starts refusing everything
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "relay access denied"}
		}
		return nil
	})
	f.engine.PauseErrors = 0.5
	ed := f.start(t)
	res, err := f.engine.Deliver(context.Background(), ed.ID)
	if !errors.Is(err, delivery.ErrPaused) {
		t.Fatalf("Deliver: %v, %v; want ErrPaused", res, err)
	}
	got, _ := f.store.GetEdition(ed.ID)
	if got.Status != digest.EditionPaused || !strings.Contains(got.Reason, "attempts failed") || !strings.Contains(got.Reason, "554") {
		t.Errorf("edition %s (%q): want paused with the failure share and the last reply", got.Status, got.Reason)
	}
	queued, _ := f.store.CountPending(ed.ID)
	if queued == 0 || got.Sent+got.Failed+queued != 400 {
		t.Errorf("after the pause: %d sent, %d failed, %d queued; want some still queued, 400 in all", got.Sent, got.Failed, queued)
	}
	// The failures stopped the run soon after they began, long before
	// the 340 remaining recipients were all refused.
	if got.Failed > 200 {
		t.Errorf("%d failed before pausing", got.Failed)
	}

	// The relay is fixed; resume (as 'editions resume' does) sends the rest.
	f.srv.SetReply(nil)
	if _, err := f.store.UpdateEdition(ed.ID, func(e *digest.Edition) error {
		e.Status, e.Reason = digest.EditionSending, ""
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	res, err = f.engine.Deliver(context.Background(), ed.ID)
	if err != nil || res.Sent != queued {
		t.Fatalf("resume: %v, %v; want %d sent", res, err, queued)
	}
	final, _ := f.store.GetEdition(ed.ID)
	if final.Status != digest.EditionSent || final.Sent+final.Failed != 400 {
		t.Errorf("after resume: %+v", final)
	}
	for e, n := range f.received() {
		if n != 1 {
			t.Errorf("%s received %d copies", e, n)
		}
	}
}

func TestDeliverDoesNotPauseBelowTheThreshold(t *testing.T) {
	f := setup(t, 150, 3)
	var mu sync.Mutex
	n := 0
	f.srv.SetReply(func(_, to string) error {
		mu.Lock()
		defer mu.Unlock()
		if n++; n%10 == 0 { // a tenth fail for good
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "rejected"}
		}
		return nil
	})
	f.engine.PauseErrors = 0.5
	ed := f.start(t)
	res, err := f.engine.Deliver(context.Background(), ed.ID)
	if err != nil || res.Sent+res.Failed != 150 || res.Failed == 0 {
		t.Errorf("Deliver: %v, %v; want all 150 done with some failures, no pause", res, err)
	}
}

func TestDeliverCapsMessagesInFlightPerDomain(t *testing.T) {
	f := setup(t, 0, 6)
	var emails []string
	for i := range 30 {
		for _, d := range []string{"big.example", "other.example", "third.example"} {
			emails = append(emails, fmt.Sprintf("r%02d@%s", i, d))
		}
	}
	f.addSubscribers(t, emails)
	cs := startCountServer(t)
	cs.delay = 3 * time.Millisecond
	host, port := cs.addr()
	f.engine.Dial = delivery.SMTPDialer(mailer.Config{Host: host, Port: port, TLS: "none", Timeout: 5 * time.Second})
	f.engine.DomainConcurrency = 2
	ed := f.start(t)
	res, err := f.engine.Deliver(context.Background(), ed.ID)
	if err != nil || res.Sent != 90 {
		t.Fatalf("Deliver: %v, %v", res, err)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for d, n := range cs.maxInflight {
		if n > 2 {
			t.Errorf("%d messages to %s in flight at once, want at most 2", n, d)
		}
	}
	// Six workers did overlap: the cap, not a lack of concurrency, kept
	// each domain at two.
	if cs.maxTotal < 3 {
		t.Errorf("at most %d messages in flight in all: the test did not exercise concurrency", cs.maxTotal)
	}
	for _, e := range emails {
		if cs.counts[e] != 1 {
			t.Errorf("%s received %d copies", e, cs.counts[e])
		}
	}
}

func TestDeliverSignsEveryMessageWithDKIM(t *testing.T) {
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		key  crypto.Signer
	}{{"Ed25519", edKey}, {"RSA", rsaKey}} {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, 40, 4)
			signer, err := mailer.NewDKIM("gazette.example", "nd2026", tc.key)
			if err != nil {
				t.Fatal(err)
			}
			f.engine.DKIM = signer
			record, err := signer.PublicKeyRecord()
			if err != nil {
				t.Fatal(err)
			}
			lookup := func(domain string) ([]string, error) {
				if domain != "nd2026._domainkey.gazette.example" {
					return nil, fmt.Errorf("no TXT record at %s", domain)
				}
				return []string{record}, nil
			}
			ed := f.start(t)
			if res, err := f.engine.Deliver(context.Background(), ed.ID); err != nil || res.Sent != 40 {
				t.Fatalf("Deliver: %v, %v", res, err)
			}
			msgs := f.srv.Messages()
			if len(msgs) != 40 {
				t.Fatalf("%d messages received, want 40", len(msgs))
			}
			for _, m := range msgs {
				vs, err := dkim.VerifyWithOptions(bytes.NewReader(m.Data), &dkim.VerifyOptions{LookupTXT: lookup})
				if err != nil || len(vs) != 1 {
					t.Fatalf("message to %v: %d signatures, %v", m.To, len(vs), err)
				}
				v := vs[0]
				if v.Err != nil || v.Domain != "gazette.example" {
					t.Errorf("message to %v: signature of %s does not verify: %v", m.To, v.Domain, v.Err)
				}
				signed := strings.ToLower(strings.Join(v.HeaderKeys, ":"))
				for _, h := range mailer.DKIMHeaders {
					if !strings.Contains(signed, strings.ToLower(h)) {
						t.Errorf("message to %v: %s is not signed (h=%s)", m.To, h, signed)
					}
				}
				// Altering a signed header breaks the signature.
				bad := bytes.Replace(m.Data, []byte("Subject: "), []byte("Subject: FREE "), 1)
				if vs, _ := dkim.VerifyWithOptions(bytes.NewReader(bad), &dkim.VerifyOptions{LookupTXT: lookup}); len(vs) == 1 && vs[0].Err == nil {
					t.Errorf("message to %v: a changed Subject still verifies", m.To)
				}
			}
		})
	}
}

func TestLoadDKIMRejectsBadKeys(t *testing.T) {
	if _, err := mailer.LoadDKIM("gazette.example", "s1", t.TempDir()+"/missing.pem"); err == nil || !strings.Contains(err.Error(), "dkim.key_file") {
		t.Errorf("missing key file: %v", err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := mailer.NewDKIM("gazette.example", "s1", ec); err == nil {
		t.Error("an ECDSA key was accepted (DKIM has no ECDSA)")
	}
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := mailer.NewDKIM("bad domain", "s1", k); err == nil || !strings.Contains(err.Error(), "dkim.domain") {
		t.Errorf("bad domain: %v", err)
	}
}

func TestLoadDKIMReadsPEMKeys(t *testing.T) {
	dir := t.TempDir()
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	pk8, err := x509.MarshalPKCS8PrivateKey(edKey)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*pem.Block{
		"ed25519.pem": {Type: "PRIVATE KEY", Bytes: pk8},
		"rsa.pem":     {Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)},
	}
	for name, block := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := mailer.LoadDKIM("gazette.example", "s1", path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		sig, err := d.Sign([]byte("From: a@gazette.example\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n"))
		if err != nil || !bytes.HasPrefix(sig, []byte("DKIM-Signature: ")) {
			t.Errorf("%s: sign: %q, %v", name, sig, err)
		}
	}
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a key"), 0o600)
	if _, err := mailer.LoadDKIM("gazette.example", "s1", bad); err == nil || !strings.Contains(err.Error(), "no PEM private key") {
		t.Errorf("garbage key file: %v", err)
	}
}
