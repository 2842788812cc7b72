package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"newsdigest/digest/capture"
)

// cli runs newsdigest in-process against one database and SMTP server.
type cli struct {
	t       *testing.T
	dir     string
	environ []string
}

func newCLI(t *testing.T, smtpAddr string) *cli {
	t.Helper()
	dir := t.TempDir()
	env := []string{"NEWSDIGEST_DB=" + filepath.Join(dir, "nd.db")}
	if smtpAddr != "" {
		host, port, _ := net.SplitHostPort(smtpAddr)
		env = append(env, "NEWSDIGEST_SMTP_HOST="+host, "NEWSDIGEST_SMTP_PORT="+port, "NEWSDIGEST_SMTP_TLS=none")
	}
	return &cli{t: t, dir: dir, environ: env}
}

// run runs one command line and returns its exit code, stdout and stderr.
func (c *cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Environ: c.environ}
	code := m.Run(context.Background(), args)
	return code, out.String(), errb.String()
}

// ok runs a command that must succeed.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(args...)
	if code != 0 {
		c.t.Fatalf("newsdigest %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func (c *cli) file(name, content string) string {
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

func TestCLIListsAndSubscribers(t *testing.T) {
	c := newCLI(t, "")
	c.ok("lists", "add", "daily", "--title", "The Daily", "--from", "Gazette <digest@gazette.example>", "--top", "3")
	if code, _, errs := c.run("lists", "add", "daily", "--from", "x@gazette.example"); code != 1 || !strings.Contains(errs, "already exists") {
		t.Errorf("second add: exit %d, %q", code, errs)
	}
	if code, _, errs := c.run("lists", "add", "Bad Name", "--from", "x@gazette.example"); code != 1 || !strings.Contains(errs, "list name") {
		t.Errorf("bad name: exit %d, %q", code, errs)
	}
	var l struct {
		Name, Title, From string
		TopCount          int `json:"top_count"`
	}
	if err := json.Unmarshal([]byte(c.ok("lists", "show", "daily", "--json")), &l); err != nil {
		t.Fatal(err)
	}
	if l.Title != "The Daily" || l.TopCount != 3 || l.From != "Gazette <digest@gazette.example>" {
		t.Errorf("lists show: %+v", l)
	}

	c.ok("subscribers", "add", "Ann@Example.org", "--name", "Ann")
	if code, _, errs := c.run("subscribers", "add", "not-an-address"); code != 1 || !strings.Contains(errs, "not a valid address") {
		t.Errorf("bad address: exit %d, %q", code, errs)
	}
	csv := c.file("people.csv", "email,name,timezone,send_hour,company\n"+
		"bob@example.org,Bob,Europe/Paris,7,Acme\n"+
		"bad@@example.org,Bad,,,\n"+
		"carol@example.org,Carol,Mars/Olympus,,\n"+
		"ann@example.org,Ann Again,,,\n"+
		"dave@example.org,\"Dave\nSmith\",,,\n"+
		"erin@example.org,Erin,,25,\n")
	code, out, errs := c.run("subscribers", "import", csv)
	if code != 0 {
		t.Fatalf("import: exit %d: %s %s", code, out, errs)
	}
	for _, want := range []string{"people.csv:3:", "people.csv:4:", "people.csv:6:", "people.csv:8:"} {
		if !strings.Contains(errs, want) {
			t.Errorf("import report lacks %q:\n%s", want, errs)
		}
	}
	if !strings.Contains(out, "skipped 1") {
		t.Errorf("import summary %q: want 1 existing skipped", out)
	}
	var subs []struct {
		Email string
		Name  string
		Attrs map[string]string
	}
	if err := json.Unmarshal([]byte(c.ok("subscribers", "list", "--json")), &subs); err != nil {
		t.Fatal(err)
	}
	if len(subs) != 2 || subs[0].Email != "ann@example.org" || subs[0].Name != "Ann" || subs[1].Email != "bob@example.org" || subs[1].Attrs["company"] != "Acme" {
		t.Errorf("subscribers after import: %+v", subs)
	}
	exported := c.ok("subscribers", "export", "--list", "daily")
	if !strings.HasPrefix(exported, "email,") || !strings.Contains(exported, "bob@example.org") {
		t.Errorf("export:\n%s", exported)
	}
	c.ok("subscribers", "unsubscribe", "bob@example.org")
	if out := c.ok("subscribers", "show", "bob@example.org"); !strings.Contains(out, "unsubscribed") {
		t.Errorf("show after unsubscribe:\n%s", out)
	}
	c.ok("subscribers", "remove", "bob@example.org")
	if code, _, _ := c.run("subscribers", "show", "bob@example.org"); code != 1 {
		t.Errorf("show after remove: exit %d, want 1", code)
	}
}

const sampleFeed = `<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Gazette</title><link>https://gazette.example/</link>
<item><guid>g1</guid><title>Harbour reopens</title><link>https://gazette.example/1</link><description>&lt;p&gt;Ships are back.&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;</description><pubDate>%s</pubDate></item>
<item><guid>g2</guid><title>Council votes</title><link>https://gazette.example/2</link><description>Budget passed.</description><pubDate>%s</pubDate></item>
</channel></rss>`

// sampleFeedAt is sampleFeed with both items published at pubDate.
func sampleFeedAt(pubDate string) string {
	return strings.ReplaceAll(sampleFeed, "%s", pubDate)
}

func TestCLISendThroughSMTP(t *testing.T) {
	srv, err := capture.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := newCLI(t, srv.Addr())
	c.ok("lists", "add", "daily", "--from", "Gazette <digest@gazette.example>")
	c.ok("subscribers", "add", "ann@example.org")
	c.ok("subscribers", "add", "bob@example.org")
	c.ok("subscribers", "add", "pending@example.org", "--pending")
	now := nowRFC1123()
	feedPath := c.file("feed.xml", sampleFeedAt(now))
	c.ok("feeds", "add", feedPath)
	if out := c.ok("articles", "list"); !strings.Contains(out, "Harbour reopens") {
		t.Errorf("articles list:\n%s", out)
	}

	// A dry run writes files and records nothing.
	dry := filepath.Join(c.dir, "dry")
	c.ok("send", "--dry-run", dry)
	if emls, _ := filepath.Glob(filepath.Join(dry, "*.eml")); len(emls) != 2 {
		t.Errorf("dry run wrote %d files, want 2", len(emls))
	}
	if srv.Count() != 0 {
		t.Fatalf("dry run sent %d messages", srv.Count())
	}
	// Without a terminal, send needs --yes.
	if code, _, errs := c.run("send"); code != 2 || !strings.Contains(errs, "--yes") {
		t.Errorf("send without --yes: exit %d %q", code, errs)
	}
	c.ok("send", "--to", "editor@example.org")
	if srv.Count() != 1 {
		t.Fatalf("test send: server has %d messages, want 1", srv.Count())
	}

	out := c.ok("send", "--yes")
	if !strings.Contains(out, "2 sent") {
		t.Errorf("send: %s", out)
	}
	if srv.Count() != 3 {
		t.Fatalf("server has %d messages, want 3", srv.Count())
	}
	got := map[string]bool{}
	for _, m := range srv.Messages()[1:] {
		got[m.To[0]] = true
		if bytes.Contains(bytes.ToLower(m.Data), []byte("<script")) {
			t.Error("a feed script reached the email")
		}
	}
	if !got["ann@example.org"] || !got["bob@example.org"] {
		t.Errorf("recipients %v", got)
	}
	// The same edition never goes out twice: a second send in the same
	// period is refused (--force-new would make a new one).
	if code, _, errs := c.run("send", "--yes"); code != 1 || !strings.Contains(errs, "refused") {
		t.Errorf("second send: exit %d %s", code, errs)
	}
	if srv.Count() != 3 {
		t.Errorf("second send delivered mail: %d", srv.Count())
	}
	var eds []struct {
		ID   string
		Sent int
	}
	if err := json.Unmarshal([]byte(c.ok("editions", "list", "--json")), &eds); err != nil {
		t.Fatal(err)
	}
	if len(eds) != 1 || eds[0].Sent != 2 {
		t.Errorf("editions: %+v", eds)
	}
	if out := c.ok("editions", "show", eds[0].ID); !strings.Contains(out, "2 sent") {
		t.Errorf("editions show:\n%s", out)
	}
}

func TestCLIUsage(t *testing.T) {
	c := newCLI(t, "")
	if code, out, _ := c.run("send", "--help"); code != 0 || !strings.Contains(out, "--dry-run") {
		t.Errorf("send --help: exit %d\n%s", code, out)
	}
	if code, out, _ := c.run("help", "preview"); code != 0 || !strings.Contains(out, "--as") {
		t.Errorf("help preview: exit %d\n%s", code, out)
	}
	if code, _, errs := c.run("frobnicate"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Errorf("unknown command: exit %d %q", code, errs)
	}
	if code, _, errs := c.run("subscribers", "show"); code != 2 || !strings.Contains(errs, "usage") {
		t.Errorf("missing argument: exit %d %q", code, errs)
	}
}

func TestCLIArticlesImportAndEditorialFlags(t *testing.T) {
	c := newCLI(t, "")
	now := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	arts := c.file("articles.json", `[
 {"guid": "a1", "link": "https://gazette.example/a1", "title": "First", "summary": "<p>One</p><script>x()</script>", "published": "`+now+`", "views": 10},
 {"guid": "a2", "link": "javascript:alert(1)", "title": "Evil"},
 {"guid": "a3", "link": "https://gazette.example/a3?utm_source=x", "title": "Third", "published": "`+now+`"}
]`)
	code, out, errs := c.run("articles", "import", arts)
	if code != 0 {
		t.Fatalf("import: exit %d %s %s", code, out, errs)
	}
	if !strings.Contains(out, "2 added") || !strings.Contains(errs, "articles.json:2:") {
		t.Errorf("import: out %q errs %q; want 2 added and row 2 rejected", out, errs)
	}
	pop := c.file("views.csv", "guid,views\na1,5000\nnope,3\n")
	code, out, errs = c.run("articles", "import", pop)
	if code != 0 || !strings.Contains(out, "views of 1 updated") || !strings.Contains(errs, `"nope"`) {
		t.Errorf("popularity import: exit %d out %q errs %q", code, out, errs)
	}
	var list []struct {
		ID, Title, Source string
		Views             int64
	}
	if err := json.Unmarshal([]byte(c.ok("articles", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("articles: %+v, want 2 (no ghost from the views file)", list)
	}
	for _, a := range list {
		if a.Title == "First" && (a.Views != 5000 || a.Source != "import") {
			t.Errorf("First after views update: %+v", a)
		}
	}
	id := list[0].ID
	c.ok("articles", "pin", id[:6])
	c.ok("articles", "boost", id, "3")
	out = c.ok("articles", "list")
	if !strings.Contains(out, "pinned") || !strings.Contains(out, "boost×3") {
		t.Errorf("flags not shown:\n%s", out)
	}
	if code, _, _ := c.run("articles", "boost", id, "-1"); code != 2 {
		t.Errorf("negative boost: exit %d, want 2", code)
	}
}

func TestCLIReadOnlyCommandsDoNotCreateADatabase(t *testing.T) {
	c := newCLI(t, "")
	for _, args := range [][]string{{"lists", "list"}, {"subscribers", "export"}, {"editions", "list"}, {"preview"}} {
		code, _, errs := c.run(args...)
		if code != 1 || !strings.Contains(errs, "no database at") {
			t.Errorf("%v: exit %d, %q; want 1 and 'no database at'", args, code, errs)
		}
	}
	if _, err := os.Stat(filepath.Join(c.dir, "nd.db")); !os.IsNotExist(err) {
		t.Errorf("a read-only command created the database: %v", err)
	}
	c.ok("lists", "add", "daily", "--from", "x@gazette.example")
	c.ok("lists", "list")
}

func TestCLIGlobalFlagsBeforeTheCommand(t *testing.T) {
	c := newCLI(t, "")
	db := filepath.Join(c.dir, "other.db")
	c.ok("--db", db, "lists", "add", "daily", "--from", "x@gazette.example")
	out := c.ok("--json", "--db", db, "lists", "list")
	if !strings.HasPrefix(strings.TrimSpace(out), "[") || !strings.Contains(out, `"daily"`) {
		t.Errorf("--json before the command: %q", out)
	}
	out = c.ok("lists", "--db", db, "show", "daily")
	if !strings.Contains(out, "daily") {
		t.Errorf("flag before the verb: %q", out)
	}
}
