package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestCLISubscribersImportFormulas imports hostile CSV rows: cells a
// spreadsheet would run as formulas are imported as text, each reported as
// a warning naming file:line and column and counted in the summary; bad
// rows are rejected; an export imported back is quiet.
func TestCLISubscribersImportFormulas(t *testing.T) {
	c := newCLI(t, "")
	c.ok("lists", "add", "daily", "--from", "Gazette <digest@gazette.example>")
	hostile := c.file("hostile.csv", "email,name,@evil,note\r\n"+
		"=cmd|calc!A1@example.org,\"=HYPERLINK(\"\"http://evil\"\")\",x,=1+1\r\n"+
		"plain@example.org,Plain,,ok\r\n"+
		"bad@@example.org,=x,,\r\n"+
		"crlf@example.org,\"Eve\r\nBcc: victim@example.org\",,\r\n")
	code, out, errs := c.run("subscribers", "import", hostile)
	if code != 0 {
		t.Fatalf("import: exit %d: %s %s", code, out, errs)
	}
	for _, want := range []string{
		`hostile.csv:1: warning: header column 3 "@evil": starts with '@': kept as text; exports prefix it with '`,
		`hostile.csv:2: warning: email "=cmd|calc!a1@example.org": starts with '='`,
		`hostile.csv:2: warning: name "=HYPERLINK(\"http://evil\")": starts with '='`,
		`hostile.csv:2: warning: note "=1+1": starts with '='`,
		`hostile.csv:4: email "bad@@example.org": is not a valid address`,
		`hostile.csv:5: name`,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if n := strings.Count(errs, "warning:"); n != 4 {
		t.Errorf("%d warnings on stderr, want 4:\n%s", n, errs)
	}
	if want := "imported 2 (2 added, 0 updated), skipped 0 existing, rejected 2, 4 warnings"; strings.TrimSpace(out) != want {
		t.Errorf("summary %q, want %q", out, want)
	}

	var show struct {
		Name  string
		Attrs map[string]string
	}
	if err := json.Unmarshal([]byte(c.ok("subscribers", "show", "=cmd|calc!a1@example.org", "--json")), &show); err != nil {
		t.Fatal(err)
	}
	if show.Name != `=HYPERLINK("http://evil")` || show.Attrs["note"] != "=1+1" || show.Attrs["@evil"] != "x" {
		t.Errorf("stored %+v, want the values as text", show)
	}

	// --json: the same warnings, in the output object.
	code, out, errs = c.run("subscribers", "import", "--update", hostile, "--json")
	if code != 0 || errs != "" {
		t.Fatalf("import --json: exit %d: %s %s", code, out, errs)
	}
	var res struct {
		Updated  int
		Skipped  int
		Rejected []struct{ Line int }
		Warnings []struct {
			Line                  int
			Column, Value, Reason string
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.Updated+res.Skipped != 2 || len(res.Rejected) != 2 || len(res.Warnings) != 4 {
		t.Fatalf("--json result %+v", res)
	}
	if w := res.Warnings[2]; w.Line != 2 || w.Column != "name" || w.Value != `=HYPERLINK("http://evil")` || !strings.HasPrefix(w.Reason, "starts with '='") {
		t.Errorf("--json warning %+v", w)
	}

	// An export (cells escaped with ') imports back without a warning.
	exported := c.file("export.csv", c.ok("subscribers", "export", "--list", "daily"))
	code, out, errs = c.run("subscribers", "import", "--update", exported)
	if code != 0 || errs != "" || !strings.Contains(out, "rejected 0") || !strings.Contains(out, "0 warnings") {
		t.Errorf("re-import of an export: exit %d, out %q, errs %q", code, out, errs)
	}
}
