package web

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"newsdigest/digest/bounce"
	"newsdigest/digest/capture"
	"newsdigest/subscribers"
)

const testBounceAddress = "bounces@bounce.gazette.example"

// checkVERP checks that m went out with sub's VERP return path and
// returns it.
func (e *env) checkVERP(m capture.Received, sub subscribers.Subscriber) string {
	e.t.Helper()
	tok, ok := subscribers.VERPToken(m.From)
	if !ok || !strings.HasPrefix(m.From, "bounces+") || !strings.HasSuffix(m.From, "@bounce.gazette.example") {
		e.t.Fatalf("MAIL FROM %q: want bounces+TOKEN@bounce.gazette.example", m.From)
	}
	c, err := e.signer.VerifyBounce(tok)
	if err != nil || c.SubscriberID != sub.ID {
		e.t.Fatalf("VERP token of %q: %v, subscriber %q, want %q", m.From, err, c.SubscriberID, sub.ID)
	}
	return m.From
}

// dsn is a Postfix-style hard bounce of a message to rcpt, delivered to
// the return path returnPath.
func dsn(returnPath, rcpt string) string {
	return strings.ReplaceAll(fmt.Sprintf(`Return-Path: <>
Delivered-To: %[1]s
From: MAILER-DAEMON@relay.gazette.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: %[1]s
Date: Fri, 27 Nov 2026 09:00:04 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain; charset=us-ascii

<%[2]s>: host mx.example.org said: 550 5.1.1 User unknown

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.gazette.example

Final-Recipient: rfc822; %[2]s
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--B--
`, returnPath, rcpt), "\n", "\r\n")
}

// TestSystemEmailsVERP checks that confirmation and welcome emails carry
// the subscriber's VERP return path, and that the bounce processor, as
// the listener runs it (a valid token required), ties a bounce of either
// to the subscriber.
func TestSystemEmailsVERP(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.BounceAddress = testBounceAddress })
	proc := &bounce.Processor{Store: e.st, Signer: e.signer, RequireToken: true, Clock: e.clock}

	t.Run("WelcomeBounce", func(t *testing.T) {
		link := e.signUpAndConfirmLink("zeb@example.org", "daily")
		sub := e.sub("zeb@example.org")
		msgs := e.waitMail()
		e.checkVERP(msgs[len(msgs)-1], sub) // the confirmation
		if r := e.get(link); r.status != 200 {
			t.Fatalf("confirm: %d", r.status)
		}
		msgs = e.waitMail()
		ws := welcomes(t, msgs[len(msgs)-1:])
		if len(ws) != 1 {
			t.Fatal("no welcome email")
		}
		rp := e.checkVERP(msgs[len(msgs)-1], sub)
		outs, err := proc.Process(strings.NewReader(dsn(rp, "zeb@example.org")), "smtp", rp)
		if err != nil {
			t.Fatal(err)
		}
		if len(outs) != 1 || outs[0].Kind != bounce.Hard || outs[0].Email != "zeb@example.org" || !outs[0].Suppressed ||
			outs[0].List != "" || outs[0].Edition != "" {
			t.Fatalf("outcomes %+v: want one hard bounce of zeb@example.org, suppressed, no list or edition", outs)
		}
		if got := e.sub("zeb@example.org"); got.StatusOn("daily") != subscribers.Bounced {
			t.Errorf("after the bounce: %+v", got.Lists)
		}
	})
	t.Run("ConfirmationBounce", func(t *testing.T) {
		e.signUpAndConfirmLink("typo@example.org", "daily", "weekly")
		sub := e.sub("typo@example.org")
		msgs := e.waitMail()
		rp := e.checkVERP(msgs[len(msgs)-1], sub)
		outs, err := proc.Process(strings.NewReader(dsn(rp, "typo@example.org")), "smtp", rp)
		if err != nil || len(outs) != 1 || outs[0].Kind != bounce.Hard || outs[0].Email != "typo@example.org" {
			t.Fatalf("outcomes %+v, %v", outs, err)
		}
		got := e.sub("typo@example.org")
		if got.StatusOn("daily") != subscribers.Bounced || got.StatusOn("weekly") != subscribers.Bounced {
			t.Errorf("after the bounce: %+v: want the pending lists bounced", got.Lists)
		}
		// The address is suppressed: a new sign-up gets the same answer,
		// and no mail.
		e.clock.Add(25 * time.Hour)
		n := len(msgs)
		if r := e.postForm("/subscribe", map[string][]string{"email": {"typo@example.org"}, "lists": {"daily"}}); r.status != 200 {
			t.Fatalf("sign-up: %d", r.status)
		}
		if got := len(e.waitMail()); got != n {
			t.Errorf("%d new mails to a bounced address, want none", got-n)
		}
	})
	t.Run("ImportedID", func(t *testing.T) {
		// An ID given by an import cannot be signed: the bare bounce
		// address, as for digests.
		if err := e.st.PutSubscriber(subscribers.Subscriber{ID: "crm-42", Email: "crm@example.org", SendHour: -1}); err != nil {
			t.Fatal(err)
		}
		if got := e.srv.returnPath(e.sub("crm@example.org")); got != testBounceAddress {
			t.Errorf("return path %q, want %q", got, testBounceAddress)
		}
	})
}

func TestSystemEmailsReturnPathWithoutBounceAddress(t *testing.T) {
	e := newEnv(t)
	link := e.signUpAndConfirmLink("ann@example.org", "daily")
	e.get(link)
	msgs := e.waitMail()
	if len(msgs) != 2 {
		t.Fatalf("%d mails, want the confirmation and the welcome", len(msgs))
	}
	for _, m := range msgs {
		if m.From != "digest@gazette.example" {
			t.Errorf("MAIL FROM %q, want the From address", m.From)
		}
	}
}

func TestBadBounceAddress(t *testing.T) {
	e := newEnv(t)
	for _, addr := range []string{"no-at-sign", "bounces+x@bounce.example.org", strings.Repeat("b", 20) + "@bounce.example.org"} {
		s := &Server{Store: e.st, Signer: e.signer, BaseURL: "https://news.example.org", BounceAddress: addr}
		if _, err := s.Handler(); err == nil || !strings.Contains(err.Error(), "bounce address") {
			t.Errorf("%q: %v", addr, err)
		}
	}
}
