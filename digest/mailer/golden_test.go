package mailer

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"newsdigest/digest/render"
)

// systemGoldens are the emails newsdigest sends on its own behalf, built
// the way digest/web builds them, with a fixed clock, Message-ID and
// boundary. Refresh with go test -update.
func systemGoldens(t *testing.T) map[string]Message {
	t.Helper()
	sys, err := render.NewSystem("")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	brand := render.Brand{
		SiteName: "Harbour Gazette", SiteURL: "https://harbourgazette.example/",
		PostalAddress: "Harbour Gazette Ltd\n1 Quay Street, Portsmouth",
	}
	cm, err := sys.Confirmation(render.Confirmation{
		Brand: brand, ListTitles: []string{"The Daily", "The Weekly"},
		ConfirmURL: "https://harbourgazette.example/confirm/tok789",
		Expires:    now.Add(7 * 24 * time.Hour),
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	wm, err := sys.Welcome(render.Welcome{
		Brand: brand, ListTitles: []string{"The Daily"}, SendTime: "07:00", TimeZone: "Europe/London",
		ArchiveURL:     "https://harbourgazette.example/archive",
		PreferencesURL: "https://harbourgazette.example/preferences/prefs456",
		UnsubscribeURL: "https://harbourgazette.example/unsubscribe/unsub123",
	})
	if err != nil {
		t.Fatal(err)
	}
	msg := func(sm render.SystemMail, id string) Message {
		return Message{
			From: "Harbour Gazette <daily@harbourgazette.example>", To: "zoe@example.org",
			Subject: sm.Subject, Date: fixedDate, MessageID: id + "@harbourgazette.example",
			Boundary: "ndboundary0123456789", Text: sm.Text, HTML: sm.HTML,
		}
	}
	// The welcome email is list mail, built like digest/web's: List-Id,
	// Feedback-ID and List-Unsubscribe with the same token as its
	// visible link.
	welcome := msg(wm, "w0123456789abcdef0123456789abcdef")
	welcome.ListID = "The Daily <daily.harbourgazette.example>"
	welcome.UnsubscribeURL = "https://harbourgazette.example/unsubscribe/unsub123"
	welcome.UnsubscribeMailto = "daily@harbourgazette.example?subject=unsubscribe%20unsub123"
	welcome.FeedbackID = "welcome:daily:newsdigest"
	return map[string]Message{
		"confirm": msg(cm, "c0123456789abcdef0123456789abcdef"),
		"welcome": welcome,
	}
}

func TestGoldenSystem(t *testing.T) {
	for name, m := range systemGoldens(t) {
		t.Run(name, func(t *testing.T) {
			got := write(t, m)
			path := filepath.Join("testdata", name+".golden.eml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
				for i := range min(len(gl), len(wl)) {
					if gl[i] != wl[i] {
						t.Fatalf("message differs from %s at line %d:\n got: %q\nwant: %q\n(run go test -update if the change is intended)", path, i+1, gl[i], wl[i])
					}
				}
				t.Fatalf("message differs from %s in length: got %d lines, want %d", path, len(gl), len(wl))
			}
		})
	}
}
