package lint

import (
	"encoding/base64"
	"fmt"
	"html"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// spec is a message under construction: header fields in order, then the
// two parts.
type spec struct {
	headers [][2]string
	parts   []part // in order
	raw     string // when set, used as is
}

type part struct {
	ctype, cte, body string
}

const (
	unsub    = "https://news.example/unsubscribe/tok123"
	goodText = "Harbour Gazette - The Daily\nhttps://news.example/\n\nHi Ann,\n\n1. Ferry timetable doubles\n   Read more: https://news.example/ferry\n\n--\nUnsubscribe: " + unsub + "\n\nHarbour Gazette Ltd\n1 Quay Street, Portsmouth\n"
	goodHTML = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><style>@media only screen and (max-width: 620px) { .container { width: 100% !important; } }</style></head>
<body style="margin:0;background-color:#f4f4f5;color:#1f2328">
<div style="display:none;max-height:0;max-width:0;overflow:hidden;mso-hide:all;opacity:0;">Ferry timetable doubles in spring</div>
<table role="presentation" width="100%" bgcolor="#f4f4f5"><tr><td align="center">
<table role="presentation" class="container" width="100%" style="max-width:600px;background-color:#ffffff"><tr><td style="padding:24px;color:#1f2328">
<a href="https://news.example/" style="color:#1f2328">Harbour Gazette</a>
<p>Hi Ann,</p>
<a href="https://news.example/ferry"><img src="https://img.news.example/ferry.jpg" alt="Ferry timetable doubles" width="552" height="310" style="width:100%;height:auto"></a>
<h2><a href="https://news.example/ferry" style="color:#1f2328">Ferry timetable doubles</a></h2>
<table role="presentation"><tr><td bgcolor="#0b5cad" style="background-color:#0b5cad"><a href="https://news.example/ferry" style="display:inline-block;padding:10px 18px;color:#ffffff;background-color:#0b5cad">Read more</a></td></tr></table>
<p style="color:#52525b"><a href="` + unsub + `" style="color:#0b5cad">Unsubscribe</a></p>
<p style="color:#52525b">Harbour Gazette Ltd<br>1 Quay Street, Portsmouth</p>
</td></tr></table>
</td></tr></table>
</body></html>
`
)

func goodSpec() *spec {
	return &spec{
		headers: [][2]string{
			{"Date", "Fri, 27 Nov 2026 07:00:00 +0100"},
			{"Feedback-ID", "daily-20261127-0600:daily:newsdigest"},
			{"List-Id", "The Daily <daily.news.example>"},
			{"List-Unsubscribe", "<" + unsub + ">,\r\n <mailto:unsubscribe@news.example?subject=unsubscribe>"},
			{"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"},
			{"MIME-Version", "1.0"},
			{"Message-ID", "<0123456789abcdef0123456789abcdef@news.example>"},
			{"Subject", "The Daily: Ferry timetable doubles"},
			{"From", `"The Daily" <daily@news.example>`},
			{"To", "<ann@example.org>"},
			{"Content-Type", "multipart/alternative;\r\n boundary=b0undary"},
		},
		parts: []part{
			{"text/plain; charset=UTF-8", "quoted-printable", goodText},
			{"text/html; charset=UTF-8", "quoted-printable", goodHTML},
		},
	}
}

func (s *spec) set(name, value string) *spec {
	for i, h := range s.headers {
		if strings.EqualFold(h[0], name) {
			if value == "" {
				s.headers = append(s.headers[:i], s.headers[i+1:]...)
			} else {
				s.headers[i][1] = value
			}
			return s
		}
	}
	if value != "" {
		s.headers = append(s.headers, [2]string{name, value})
	}
	return s
}

func (s *spec) add(name, value string) *spec {
	s.headers = append(s.headers, [2]string{name, value})
	return s
}

func (s *spec) html(f func(string) string) *spec {
	s.parts[len(s.parts)-1].body = f(s.parts[len(s.parts)-1].body)
	return s
}

func (s *spec) text(f func(string) string) *spec {
	s.parts[0].body = f(s.parts[0].body)
	return s
}

func encode(cte, body string) string {
	body = strings.ReplaceAll(body, "\n", "\r\n")
	switch cte {
	case "quoted-printable":
		var b strings.Builder
		w := quotedprintable.NewWriter(&b)
		w.Write([]byte(body))
		w.Close()
		return b.String()
	case "base64":
		e := base64.StdEncoding.EncodeToString([]byte(body))
		var b strings.Builder
		for len(e) > 76 {
			b.WriteString(e[:76] + "\r\n")
			e = e[76:]
		}
		b.WriteString(e)
		return b.String()
	}
	return body
}

func (s *spec) bytes() []byte {
	if s.raw != "" {
		return []byte(s.raw)
	}
	var b strings.Builder
	for _, h := range s.headers {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	for _, p := range s.parts {
		b.WriteString("--b0undary\r\nContent-Type: " + p.ctype + "\r\nContent-Transfer-Encoding: " + p.cte + "\r\n\r\n")
		b.WriteString(encode(p.cte, p.body) + "\r\n")
	}
	b.WriteString("--b0undary--\r\n")
	return []byte(b.String())
}

func TestGoodMessage(t *testing.T) {
	r := Check(goodSpec().bytes(), Options{PostalAddress: "Harbour Gazette Ltd\n1 Quay Street, Portsmouth"})
	for _, f := range r.Findings {
		t.Errorf("unexpected finding: %s", f)
	}
	if r.HTMLBytes == 0 || r.TextBytes == 0 {
		t.Errorf("sizes: html %d, text %d", r.HTMLBytes, r.TextBytes)
	}
}

// A URL that is prose in both parts (a reader named after one, as an
// import let through) is not a link missing from the HTML part; one that
// is a link in the HTML part and absent from the text still is.
func TestProseURLInBothParts(t *testing.T) {
	name := `=HYPERLINK("http://evil.example/x")`
	s := goodSpec().text(replace("Hi Ann,", "Hi "+name+",")).html(replace("<p>Hi Ann,</p>", "<p>Hi "+html.EscapeString(name)+",</p>"))
	for _, f := range Check(s.bytes(), Options{PostalAddress: "Harbour Gazette Ltd\n1 Quay Street, Portsmouth"}).Findings {
		t.Errorf("unexpected finding: %s", f)
	}
	s = goodSpec().text(replace("Hi Ann,", "Hi "+name+",")).html(replace("<p>Hi Ann,</p>", "<p>Hi Ann,</p>"))
	if r := Check(s.bytes(), Options{}); !strings.Contains(fmt.Sprint(r.Findings), "same-links") {
		t.Errorf("a URL only in the text part: no same-links finding in %v", r.Findings)
	}
}

func replace(old, new string) func(string) string {
	return func(s string) string {
		if !strings.Contains(s, old) {
			panic(fmt.Sprintf("test: %q not in body", old))
		}
		return strings.Replace(s, old, new, 1)
	}
}

// breakers holds, for each rule, messages that break it, with the severity
// expected.
var breakers = map[string][]struct {
	name string
	sev  Severity
	mod  func(*spec)
	opt  Options
}{
	"4.1 from": {
		{"Missing", Error, func(s *spec) { s.set("From", "") }, Options{}},
		{"TwoAddresses", Error, func(s *spec) { s.set("From", "a@news.example, b@news.example") }, Options{}},
	},
	"4.1 date": {
		{"Missing", Error, func(s *spec) { s.set("Date", "") }, Options{}},
		{"Unparsable", Error, func(s *spec) { s.set("Date", "yesterday") }, Options{}},
	},
	"4.1 message-id": {
		{"Missing", Error, func(s *spec) { s.set("Message-ID", "") }, Options{}},
		{"OtherDomain", Error, func(s *spec) { s.set("Message-ID", "<0123456789abcdef0123@mailer.example>") }, Options{}},
		{"NoBrackets", Error, func(s *spec) { s.set("Message-ID", "0123456789abcdef@news.example") }, Options{}},
		{"Short", Warning, func(s *spec) { s.set("Message-ID", "<1@news.example>") }, Options{}},
	},
	"4.1 subject": {{"Missing", Error, func(s *spec) { s.set("Subject", "") }, Options{}}},
	"4.1 mime-version": {
		{"Missing", Error, func(s *spec) { s.set("MIME-Version", "") }, Options{}},
	},
	"4.1 duplicate-header": {
		{"TwoSubjects", Error, func(s *spec) { s.add("Subject", "Again") }, Options{}},
		{"TwoListUnsubscribe", Error, func(s *spec) { s.add("List-Unsubscribe", "<"+unsub+">") }, Options{}},
	},
	"4.1 line-length": {
		{"LongLine", Error, func(s *spec) {
			s.parts[0].cte = "8bit"
			s.parts[0].body += strings.Repeat("x", 1200) + "\n"
		}, Options{}},
	},
	"4.2 multipart-alternative": {
		{"Mixed", Error, func(s *spec) { s.set("Content-Type", "multipart/mixed; boundary=b0undary") }, Options{}},
		{"HTMLOnly", Error, func(s *spec) {
			s.set("Content-Type", "text/html; charset=UTF-8")
			s.raw = ""
			s.parts = nil
		}, Options{}},
	},
	"4.2 part-order": {
		{"HTMLFirst", Error, func(s *spec) { s.parts[0], s.parts[1] = s.parts[1], s.parts[0] }, Options{}},
		{"NoHTML", Error, func(s *spec) { s.parts = s.parts[:1] }, Options{}},
	},
	"4.2 same-links": {
		{"StoryOnlyInHTML", Error, func(s *spec) {
			s.html(replace("<p>Hi Ann,</p>", `<p>Hi Ann, <a href="https://news.example/extra">extra</a></p>`))
		}, Options{}},
		{"StoryOnlyInText", Error, func(s *spec) { s.text(replace("Hi Ann,", "Hi Ann, https://news.example/other")) }, Options{}},
	},
	"4.3 list-unsubscribe": {
		{"Missing", Error, func(s *spec) { s.set("List-Unsubscribe", "") }, Options{}},
		{"HTTP", Error, func(s *spec) {
			s.set("List-Unsubscribe", "<http://news.example/u/1>, <mailto:u@news.example>")
		}, Options{}},
		{"HTTPLoopback", Warning, func(s *spec) {
			s.set("List-Unsubscribe", "<http://127.0.0.1:8080/u/1>, <mailto:u@news.example>")
		}, Options{}},
		{"OnlyMailto", Error, func(s *spec) { s.set("List-Unsubscribe", "<mailto:u@news.example>") }, Options{}},
	},
	"4.3 list-unsubscribe-mailto": {
		{"NoMailto", Warning, func(s *spec) { s.set("List-Unsubscribe", "<"+unsub+">") }, Options{}},
	},
	"4.3 list-unsubscribe-post": {
		{"Missing", Error, func(s *spec) { s.set("List-Unsubscribe-Post", "") }, Options{}},
		{"Wrong", Error, func(s *spec) { s.set("List-Unsubscribe-Post", "One-Click") }, Options{}},
	},
	"4.3 body-unsubscribe": {
		{"NotInHTML", Error, func(s *spec) {
			s.html(replace(`<p style="color:#52525b"><a href="`+unsub+`" style="color:#0b5cad">Unsubscribe</a></p>`, ""))
			s.text(replace("Unsubscribe: "+unsub, "Bye"))
		}, Options{}},
		{"HiddenInHTML", Error, func(s *spec) {
			s.html(replace(`<p style="color:#52525b"><a href="`+unsub, `<p style="display:none"><a href="`+unsub))
		}, Options{}},
	},
	"4.3 postal-address": {
		{"Missing", Warning, func(s *spec) {
			s.html(replace("Harbour Gazette Ltd<br>1 Quay Street, Portsmouth", "Harbour Gazette"))
			s.text(replace("1 Quay Street, Portsmouth", ""))
		}, Options{}},
		{"ConfiguredMissing", Error, func(s *spec) {
			s.html(replace("Harbour Gazette Ltd<br>1 Quay Street, Portsmouth", "Harbour Gazette"))
		}, Options{PostalAddress: "Harbour Gazette Ltd\n1 Quay Street, Portsmouth"}},
		{"Placeholder", Warning, func(s *spec) {
			s.text(replace("1 Quay Street, Portsmouth", "Set site.postal_address in newsdigest.toml"))
		}, Options{}},
	},
	"4.4 list-id": {
		{"Missing", Error, func(s *spec) { s.set("List-Id", "") }, Options{}},
		{"Malformed", Error, func(s *spec) { s.set("List-Id", "The Daily") }, Options{}},
	},
	"4.4 feedback-id": {{"Missing", Error, func(s *spec) { s.set("Feedback-ID", "") }, Options{}}},
	"4.4 return-path": {
		{"NotVERP", Warning, func(s *spec) { s.set("Return-Path", "<bounces@news.example>") }, Options{}},
		{"Malformed", Error, func(s *spec) { s.set("Return-Path", "bounces") }, Options{}},
	},
	"4.4 user-agent": {
		{"GoMail", Error, func(s *spec) { s.set("User-Agent", "go-mail v0.8.1 // https://github.com/wneessen/go-mail") }, Options{}},
		{"XMailer", Error, func(s *spec) { s.set("X-Mailer", "go-mail v0.8.1") }, Options{}},
	},
	"4.5 html-size": {
		{"TooBig", Error, func(s *spec) {
			s.html(replace("<p>Hi Ann,</p>", "<p>Hi Ann,</p><p>"+strings.Repeat("lorem ipsum ", 9000)+"</p>"))
		}, Options{}},
	},
	"4.6 lang": {{"Missing", Warning, func(s *spec) { s.html(replace(`<html lang="en">`, "<html>")) }, Options{}}},
	"4.6 img-alt": {
		{"Missing", Error, func(s *spec) { s.html(replace(` alt="Ferry timetable doubles"`, "")) }, Options{}},
		{"Empty", Warning, func(s *spec) { s.html(replace(` alt="Ferry timetable doubles"`, ` alt=""`)) }, Options{}},
	},
	"4.6 img-size": {
		{"NoHeight", Error, func(s *spec) { s.html(replace(` height="310"`, "")) }, Options{}},
		{"Percent", Error, func(s *spec) { s.html(replace(` width="552"`, ` width="100%"`)) }, Options{}},
	},
	"4.6 img-src": {
		{"HTTP", Error, func(s *spec) {
			s.html(replace("https://img.news.example/ferry.jpg", "http://img.news.example/ferry.jpg"))
		}, Options{}},
		{"Relative", Error, func(s *spec) { s.html(replace("https://img.news.example/ferry.jpg", "/ferry.jpg")) }, Options{}},
	},
	"4.6 preheader": {
		{"Missing", Warning, func(s *spec) {
			s.html(replace(`<div style="display:none;max-height:0;max-width:0;overflow:hidden;mso-hide:all;opacity:0;">Ferry timetable doubles in spring</div>`, ""))
		}, Options{}},
		{"DisplayNoneOnly", Warning, func(s *spec) {
			s.html(replace(`display:none;max-height:0;max-width:0;overflow:hidden;mso-hide:all;opacity:0;`, `display:none`))
		}, Options{}},
		{"TinyFont", Warning, func(s *spec) {
			s.html(replace(`display:none;max-height:0;`, `display:none;font-size:1px;max-height:0;`))
		}, Options{}},
	},
	"4.6 low-contrast": {
		{"PreheaderHiddenByColour", Error, func(s *spec) {
			s.html(replace(`<div style="display:none;max-height:0;max-width:0;overflow:hidden;mso-hide:all;opacity:0;">`, `<div style="color:#f4f4f5;font-size:12px">`))
		}, Options{}},
		{"PaleGrey", Warning, func(s *spec) {
			s.html(replace(`<p>Hi Ann,</p>`, `<p style="color:#aaaaaa">Hi Ann,</p>`))
		}, Options{}},
	},
	"4.6 script": {{"Script", Error, func(s *spec) { s.html(replace("</body>", "<script>alert(1)</script></body>")) }, Options{}}},
	"4.6 form": {
		{"Form", Error, func(s *spec) {
			s.html(replace("</body>", `<form action="https://news.example/s"><input name="q"></form></body>`))
		}, Options{}},
	},
	"4.6 embed": {
		{"Iframe", Error, func(s *spec) { s.html(replace("</body>", `<iframe src="https://news.example/"></iframe></body>`)) }, Options{}},
	},
	"4.6 css-flex": {
		{"InlineFlex", Error, func(s *spec) { s.html(replace(`<p>Hi Ann,</p>`, `<p style="display:flex">Hi Ann,</p>`)) }, Options{}},
		{"StyleBlockFlex", Error, func(s *spec) {
			s.html(replace(`.container { width: 100% !important; }`, `.container { width: 100% !important; flex-direction: column; }`))
		}, Options{}},
	},
	"4.6 css-grid": {
		{"Grid", Error, func(s *spec) { s.html(replace(`<p>Hi Ann,</p>`, `<p style="display: grid">Hi Ann,</p>`)) }, Options{}},
	},
	"4.6 css-position": {
		{"Absolute", Error, func(s *spec) {
			s.html(replace(`<p>Hi Ann,</p>`, `<p style="position:absolute;top:0">Hi Ann,</p>`))
		}, Options{}},
	},
	"4.6 css-variables": {
		{"Var", Error, func(s *spec) {
			s.html(replace(`<p>Hi Ann,</p>`, `<p style="--accent:#0b5cad;color:var(--accent)">Hi Ann,</p>`))
		}, Options{}},
	},
	"4.6 style-only": {
		{"ClassRule", Warning, func(s *spec) {
			s.html(replace(`<style>`, `<style>.story { padding: 12px; } `))
		}, Options{}},
	},
	"4.6 fixed-width": {
		{"Wide", Warning, func(s *spec) {
			s.html(replace(`class="container" width="100%"`, `class="container" width="800"`))
		}, Options{}},
	},
	"4.6 link-absolute": {
		{"Relative", Error, func(s *spec) {
			s.html(replace(`<p>Hi Ann,</p>`, `<p>Hi Ann, <a href="/ferry">ferry</a></p>`))
		}, Options{}},
		{"Empty", Error, func(s *spec) {
			s.html(replace(`<a href="`+unsub+`" style="color:#0b5cad">Unsubscribe</a>`, `<a href="" style="color:#0b5cad">Unsubscribe</a>`))
		}, Options{}},
	},
	"4.6 link-https": {
		{"HTTP", Warning, func(s *spec) {
			s.html(replace(`<p>Hi Ann,</p>`, `<p>Hi Ann, <a href="http://news.example/ferry">ferry</a></p>`))
			s.text(replace("Hi Ann,", "Hi Ann, http://news.example/ferry"))
		}, Options{}},
	},
	"4.7 header-crlf": {
		{"InjectedLine", Error, func(s *spec) { s.set("Subject", "Hello\r\nthis is not a header") }, Options{}},
		{"EncodedCRLF", Error, func(s *spec) { s.set("Subject", "=?utf-8?q?Hello=0D=0ABcc:_victim@example.org?=") }, Options{}},
		{"BareCR", Error, func(s *spec) { s.set("Subject", "Hello\rX-Evil: 1") }, Options{}},
	},
	"4.7 event-handler": {
		{"Onclick", Error, func(s *spec) { s.html(replace(`<p>Hi Ann,</p>`, `<p onclick="steal()">Hi Ann,</p>`)) }, Options{}},
		{"JavascriptURL", Error, func(s *spec) {
			s.html(replace(`<p>Hi Ann,</p>`, `<p>Hi Ann, <a href="javascript:alert(1)">x</a></p>`))
		}, Options{}},
	},
}

// TestEveryRuleBreaks checks each rule with messages that break it: the
// rule is reported with the expected severity.
func TestEveryRuleBreaks(t *testing.T) {
	for _, r := range Rules {
		cases, ok := breakers[r.ID]
		if !ok {
			t.Errorf("rule %s has no test case", r.ID)
			continue
		}
		for _, tc := range cases {
			t.Run(strings.ReplaceAll(r.ID, " ", "_")+"/"+tc.name, func(t *testing.T) {
				s := goodSpec()
				tc.mod(s)
				rep := Check(s.bytes(), tc.opt)
				found := false
				for _, f := range rep.Findings {
					if f.Rule == r.ID && f.Severity == tc.sev {
						found = true
						if f.Message == "" {
							t.Errorf("finding without a message")
						}
					}
				}
				if !found {
					t.Errorf("want a %s %s finding, got %v", tc.sev, r.ID, rep.Findings)
				}
				if tc.sev == Error && rep.Errors() == 0 {
					t.Errorf("Errors() = 0")
				}
			})
		}
	}
	for id := range breakers {
		if ruleIndex(id) == len(Rules) {
			t.Errorf("test cases for unknown rule %s", id)
		}
	}
}

func TestSystemSkipsListRules(t *testing.T) {
	s := goodSpec()
	s.set("List-Unsubscribe", "").set("List-Unsubscribe-Post", "").set("List-Id", "").set("Feedback-ID", "")
	s.html(replace(`<p style="color:#52525b"><a href="`+unsub+`" style="color:#0b5cad">Unsubscribe</a></p>`, ""))
	s.text(replace("Unsubscribe: "+unsub, ""))
	if r := Check(s.bytes(), Options{System: true}); len(r.Findings) > 0 {
		t.Errorf("system message: %v", r.Findings)
	}
	if r := Check(s.bytes(), Options{}); r.Errors() < 5 {
		t.Errorf("the same as list mail: %d errors, want the list rules to fail: %v", r.Errors(), r.Findings)
	}
}

func TestEncodings(t *testing.T) {
	t.Run("Base64", func(t *testing.T) {
		s := goodSpec()
		s.parts[0].cte, s.parts[1].cte = "base64", "base64"
		if r := Check(s.bytes(), Options{}); len(r.Findings) > 0 {
			t.Errorf("base64 parts: %v", r.Findings)
		}
	})
	t.Run("LFLineEnds", func(t *testing.T) {
		raw := strings.ReplaceAll(string(goodSpec().bytes()), "\r\n", "\n")
		if r := Check([]byte(raw), Options{}); len(r.Findings) > 0 {
			t.Errorf("LF line ends: %v", r.Findings)
		}
	})
	t.Run("Garbage", func(t *testing.T) {
		for _, raw := range []string{"", "no header at all", "\x00\x01\x02\r\n\r\n", "Content-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\n"} {
			r := Check([]byte(raw), Options{})
			if r.Errors() == 0 {
				t.Errorf("%q: no error", raw)
			}
		}
	})
}

// TestGolden lints the golden files of the mailer package: the default
// templates pass every rule. The confirmation is not list mail; the
// welcome email is, and meets the list rules like the digest.
func TestGoldenDigestPasses(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "mailer", "testdata", "*.golden.eml"))
	if len(files) == 0 {
		t.Fatal("no golden .eml files in ../mailer/testdata")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		opt := Options{System: strings.HasPrefix(filepath.Base(f), "confirm")}
		if r := Check(raw, opt); len(r.Findings) > 0 {
			t.Errorf("%s: %v", f, r.Findings)
		}
	}
}

func FuzzCheck(f *testing.F) {
	f.Add(goodSpec().bytes())
	f.Add([]byte("From: a@b.example\r\n\r\nhi"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r := Check(raw, Options{})
		for _, fd := range r.Findings {
			if ruleIndex(fd.Rule) == len(Rules) {
				t.Fatalf("finding with unknown rule %q", fd.Rule)
			}
		}
	})
}
