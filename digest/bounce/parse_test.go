package bounce

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	tokAnn  = "ahek7jdpggq3fq6u4x3aogbjhjfvy3l6r6inr5z2je4vwhwu6a7a"
	tokBob  = "ahek7jdpggy3fq6u4x3aogbjhjfvy3l6r6igwcc7hpgi4obeyada"
	tokCara = "ahek7jdpgha3fq6u4x3aogbjhjfvy3l6r6ibgux2tdtoknc7nbpq"
	tokDan  = "ahek7jdpghi3fq6u4x3aogbjhjfvy3l6r6imcayk76uzjrtyp2wq"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		file       string
		typ        string
		kind       Kind
		email      string
		status     string
		diagnostic string // a substring
		feedback   string
		token      string
		err        error
	}{
		{file: "postfix-hard.eml", typ: "delivery-status", kind: Hard, email: "ann@mail.example.net", status: "5.1.1",
			diagnostic: "User unknown in virtual mailbox table", token: tokAnn},
		{file: "postfix-delayed.eml", typ: "delivery-status", kind: Soft, email: "bob@full.example.com", status: "4.2.2",
			diagnostic: "Mailbox full", token: tokBob},
		{file: "exchange-hard.eml", typ: "delivery-status", kind: Hard, email: "cara@corp.example.com", status: "5.1.10",
			diagnostic: "RecipientNotFound; Recipient not found by SMTP address lookup", token: tokCara},
		{file: "gmail-hard.eml", typ: "delivery-status", kind: Hard, email: "dan.nobody@gmail.example", status: "5.1.1",
			diagnostic: "does not exist. Please try", token: tokDan},
		{file: "yahoo-arf.eml", typ: "feedback-report", kind: Complaint, email: "ann@yahoo.example", feedback: "abuse", token: tokAnn},
		{file: "autoreply.eml", kind: Other, token: tokAnn, err: ErrNotReport},
		{file: "garbage.eml", kind: Other, err: ErrMalformed},
		{file: "broken-report.eml", kind: Other, err: ErrMalformed},
	} {
		t.Run(strings.TrimSuffix(tc.file, ".eml"), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Parse(bytes.NewReader(raw))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
			} else if err != nil {
				t.Fatalf("err = %v", err)
			}
			if rep == nil {
				t.Fatal("nil report")
			}
			if got := rep.Kind(); got != tc.kind {
				t.Errorf("Kind() = %s, want %s", got, tc.kind)
			}
			if rep.Type != tc.typ {
				t.Errorf("Type = %q, want %q", rep.Type, tc.typ)
			}
			if tc.token != "" && !slices.Contains(rep.Tokens, tc.token) {
				t.Errorf("Tokens = %v, want %s among them", rep.Tokens, tc.token)
			}
			if tc.kind == Other {
				return
			}
			if len(rep.Recipients) != 1 {
				t.Fatalf("Recipients = %+v, want one", rep.Recipients)
			}
			rc := rep.Recipients[0]
			if rc.Email != tc.email || rc.Status != tc.status || rc.FeedbackType != tc.feedback {
				t.Errorf("recipient = %+v, want email %s status %q feedback %q", rc, tc.email, tc.status, tc.feedback)
			}
			if !strings.Contains(rc.Diagnostic, tc.diagnostic) {
				t.Errorf("Diagnostic = %q, want it to contain %q", rc.Diagnostic, tc.diagnostic)
			}
		})
	}
}

func TestParseEnvelopeToken(t *testing.T) {
	raw, _ := os.ReadFile("testdata/broken-report.eml")
	rep, _ := Parse(bytes.NewReader(raw), "bounces+"+strings.ToUpper(tokBob)+"@bounce.harbourgazette.example")
	if len(rep.Tokens) != 1 || !strings.EqualFold(rep.Tokens[0], tokBob) {
		t.Errorf("Tokens = %v", rep.Tokens)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		action, status, diag string
		want                 Kind
	}{
		{"failed", "5.7.1", "", Hard},
		{"failed", "4.4.7", "", Soft}, // given up after 4xx: still a temporary cause
		{"delayed", "", "", Soft},
		{"delivered", "2.0.0", "", Other},
		{"relayed", "", "", Other},
		{"failed", "", "smtp; 550 mailbox unavailable", Hard},
		{"failed", "", "smtp; 421 try later", Soft},
		{"failed", "", "", Hard},
		{"", "", "", Other},
	} {
		if got := classify(tc.action, tc.status, tc.diag); got != tc.want {
			t.Errorf("classify(%q, %q, %q) = %s, want %s", tc.action, tc.status, tc.diag, got, tc.want)
		}
	}
}

func TestParseHostile(t *testing.T) {
	// A report with many recipients, control characters and a huge field
	// is read within its bounds.
	var b strings.Builder
	b.WriteString("Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n")
	for i := range 1000 {
		b.WriteString("Final-Recipient: rfc822; u" + strings.Repeat("x", i%50) + "@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 \x1b[31mred\r\n" + " " + strings.Repeat("y", 10000) + "\r\n\r\n")
	}
	b.WriteString("--b--\r\n")
	rep, err := Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rep.Recipients); n == 0 || n > maxGroups {
		t.Errorf("%d recipients, want 1..%d", n, maxGroups)
	}
	for _, rc := range rep.Recipients {
		if strings.ContainsAny(rc.Diagnostic, "\x1b\r\n") || len(rc.Diagnostic) > 300 {
			t.Fatalf("diagnostic not cleaned: %q", rc.Diagnostic)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rep, err := Parse(bytes.NewReader(raw), "bounces+"+tokAnn+"@b.example")
		if rep == nil {
			t.Fatal("nil report")
		}
		if err != nil && !errors.Is(err, ErrNotReport) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		if err == nil && (rep.Type == "" || len(rep.Recipients) == 0) {
			t.Fatalf("no error but no report: %+v", rep)
		}
		_ = rep.Kind()
	})
}
