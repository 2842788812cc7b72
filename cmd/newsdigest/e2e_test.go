package main

import (
	"bytes"
	"encoding/json"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// buildBinary builds newsdigest once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "newsdigest")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestDemoEndToEnd runs the built binary's demo twice, as a new user would,
// and checks the messages its SMTP server saved.
func TestDemoEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	for run := 1; run <= 2; run++ {
		out := t.TempDir()
		cmd := exec.Command(bin, "demo", "--out", out, "--json")
		cmd.Dir = t.TempDir() // no newsdigest.toml here
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("run %d: demo: %v\nstdout: %s\nstderr: %s", run, err, stdout.String(), stderr.String())
		}
		var res struct {
			Sent, Failed, Received, Stories int
			Inbox, Preview                  string
		}
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			t.Fatalf("run %d: demo --json output %q: %v", run, stdout.String(), err)
		}
		if res.Sent != 5 || res.Failed != 0 || res.Received != 5 {
			t.Errorf("run %d: got sent=%d failed=%d received=%d, want 5 sent and received", run, res.Sent, res.Failed, res.Received)
		}
		if res.Stories < 5 {
			t.Errorf("run %d: %d stories, want at least 5", run, res.Stories)
		}
		emls, _ := filepath.Glob(filepath.Join(res.Inbox, "*.eml"))
		if len(emls) != 5 {
			t.Fatalf("run %d: %d .eml files in %s, want 5", run, len(emls), res.Inbox)
		}
		checkDemoMessage(t, emls[0])
		preview, err := os.ReadFile(res.Preview)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(preview, []byte("<html")) || bytes.Contains(bytes.ToLower(preview), []byte("<script")) {
			t.Errorf("preview %s is not a clean HTML page", res.Preview)
		}
	}
}

func checkDemoMessage(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	h := msg.Header
	for _, k := range []string{"From", "To", "Subject", "Date", "Message-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"} {
		if h.Get(k) == "" {
			t.Errorf("%s: no %s header", path, k)
		}
	}
	if !strings.HasSuffix(strings.Trim(h.Get("Message-Id"), "<>"), "@harbourgazette.example") {
		t.Errorf("Message-ID %q is not on the sender's domain", h.Get("Message-Id"))
	}
	if h.Get("User-Agent") != "" || h.Get("X-Mailer") != "" {
		t.Errorf("User-Agent/X-Mailer present: %q %q", h.Get("User-Agent"), h.Get("X-Mailer"))
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q: want multipart/alternative", h.Get("Content-Type"))
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	var unsubInBody int
	unsub := strings.Trim(strings.Split(h.Get("List-Unsubscribe"), ",")[0], "<> ")
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types = append(types, ct)
		body := new(bytes.Buffer)
		body.ReadFrom(p) // multipart decodes quoted-printable
		if strings.Contains(strings.ReplaceAll(body.String(), "&amp;", "&"), unsub) {
			unsubInBody++
		}
	}
	if strings.Join(types, ",") != "text/plain,text/html" {
		t.Errorf("parts %v: want text/plain then text/html", types)
	}
	if unsubInBody != 2 {
		t.Errorf("unsubscribe URL %q found in %d of 2 parts", unsub, unsubInBody)
	}
}
