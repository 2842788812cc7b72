package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"newsdigest/digest/capture"
)

// newCheckCLI is a CLI with one list, two confirmed subscribers, fresh
// stories, an https base URL and a postal address.
func newCheckCLI(t *testing.T, smtpAddr string, env ...string) *cli {
	t.Helper()
	c := newCLI(t, smtpAddr)
	c.environ = append(c.environ,
		"NEWSDIGEST_HTTP_BASE_URL=https://gazette.example/newsletter",
		"NEWSDIGEST_SITE_NAME=The Gazette", "NEWSDIGEST_SITE_URL=https://gazette.example/",
		"NEWSDIGEST_SITE_POSTAL_ADDRESS=The Gazette, 1 Quay Street, Port Example")
	c.environ = append(c.environ, env...)
	c.ok("lists", "add", "daily", "--title", "The Daily", "--from", "Gazette <digest@gazette.example>")
	c.ok("subscribers", "add", "ann@example.org")
	c.ok("subscribers", "add", "bob@example.org")
	now := nowRFC1123()
	c.ok("feeds", "add", c.file("feed.xml", sampleFeedAt(now)))
	return c
}

func TestCheckFile(t *testing.T) {
	c := newCLI(t, "")
	golden := filepath.Join("..", "..", "digest", "mailer", "testdata", "digest.golden.eml")
	t.Run("OK", func(t *testing.T) {
		out := c.ok("check", golden)
		if !strings.Contains(out, "ok: ") {
			t.Errorf("check golden: %s", out)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		raw, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		bad := strings.Replace(string(raw), "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", "", 1)
		p := c.file("bad.eml", bad)
		code, out, errs := c.run("check", p)
		if code != 1 || !strings.Contains(out, "error   4.3 list-unsubscribe-post:") || !strings.Contains(errs, "1 error") {
			t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
		}
		code, out, _ = c.run("check", p, "--json")
		var reps []checkReport
		if err := json.Unmarshal([]byte(out), &reps); err != nil || code != 1 {
			t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
		}
		if len(reps) != 1 || reps[0].Errors != 1 || reps[0].Findings[0].Rule != "4.3 list-unsubscribe-post" || reps[0].Findings[0].Severity != "error" {
			t.Errorf("--json: %+v", reps)
		}
	})
	t.Run("System", func(t *testing.T) {
		confirm := filepath.Join("..", "..", "digest", "mailer", "testdata", "confirm.golden.eml")
		if code, out, _ := c.run("check", confirm); code != 1 || !strings.Contains(out, "4.4 list-id") {
			t.Errorf("a confirmation checked as list mail: exit %d\n%s", code, out)
		}
		if out := c.ok("check", "--system", confirm); !strings.Contains(out, "ok: ") {
			t.Errorf("check --system: %s", out)
		}
	})
	t.Run("Usage", func(t *testing.T) {
		if code, _, _ := c.run("check"); code != 2 {
			t.Errorf("no argument: exit %d, want 2", code)
		}
		if code, _, errs := c.run("check", "/nonexistent.eml"); code != 1 || !strings.Contains(errs, "nonexistent") {
			t.Errorf("missing file: exit %d %q", code, errs)
		}
	})
}

func TestCheckList(t *testing.T) {
	c := newCheckCLI(t, "")
	out := c.ok("check", "--list", "daily")
	if !strings.Contains(out, "list daily (edition daily-") || !strings.Contains(out, "ok: ") {
		t.Errorf("check --list:\n%s", out)
	}
	// The default postal address is a reminder: a warning, not an error.
	c.environ = append(c.environ, "NEWSDIGEST_SITE_POSTAL_ADDRESS=")
	out = c.ok("check", "--list", "daily")
	if !strings.Contains(out, "warning 4.3 postal-address") {
		t.Errorf("check --list without a postal address:\n%s", out)
	}
}

// A template directory replaces an embedded template; check and send judge
// the result the same way.
func TestCheckTemplateOverride(t *testing.T) {
	srv, err := capture.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	embedded, err := os.ReadFile(filepath.Join("..", "..", "templates", "email", "digest.html.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	// An override that drops the alt text of story images and adds a
	// flexbox: two errors.
	tmpl := strings.Replace(string(embedded), ` alt="{{.ImageAlt}}"`, "", 1)
	tmpl = strings.Replace(tmpl, `<td class="body-cell">`, `<td class="body-cell" style="display:flex">`, 1)
	if tmpl == string(embedded) {
		t.Fatal("the override did not change the template")
	}
	if err := os.WriteFile(filepath.Join(dir, "digest.html.tmpl"), []byte(tmpl), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCheckCLI(t, srv.Addr(), "NEWSDIGEST_TEMPLATES_DIR="+dir)
	c.ok("articles", "import", c.file("img.json", `[{"guid":"g3","link":"https://gazette.example/3","title":"Boats","summary":"Boats.","image":"https://gazette.example/3.jpg","published":"`+
		time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)+`"}]`))

	code, out, _ := c.run("check", "--list", "daily")
	if code != 1 || !strings.Contains(out, "error   4.6 css-flex") {
		t.Errorf("check with the override: exit %d\n%s", code, out)
	}
	// send refuses, test copies included; nothing reaches the server.
	for _, args := range [][]string{{"send", "--yes"}, {"send", "--to", "editor@example.org"}} {
		code, _, errs := c.run(args...)
		if code != 1 || !strings.Contains(errs, "4.6 css-flex") || !strings.Contains(errs, "--force") {
			t.Errorf("%v: exit %d\n%s", args, code, errs)
		}
	}
	if srv.Count() != 0 {
		t.Fatalf("a refused send delivered %d messages", srv.Count())
	}
	// A dry run only reports.
	c.ok("send", "--dry-run", filepath.Join(c.dir, "dry"))
	// --force sends anyway.
	if out := c.ok("send", "--yes", "--force"); !strings.Contains(out, "2 sent") {
		t.Errorf("send --force: %s", out)
	}
	if srv.Count() != 2 {
		t.Errorf("server has %d messages, want 2", srv.Count())
	}
}

func TestSendChecksFirst(t *testing.T) {
	srv, err := capture.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := newCheckCLI(t, srv.Addr())
	code, out, errs := c.run("send", "--yes")
	if code != 0 || !strings.Contains(out, "2 sent") || strings.Contains(errs, "check:") {
		t.Errorf("send of a clean edition: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
}
