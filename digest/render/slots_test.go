package render

import (
	"bytes"
	"testing"
)

// TestPersonalizeAppendReuse: filling buffers that held an earlier, longer
// recipient's copy gives exactly Personalize's output, with no trace of
// the earlier one.
func TestPersonalizeAppendReuse(t *testing.T) {
	p := prepare(t, newRenderer(t, ""), testView(5, 5))
	long := fullRecipient
	long.Name = "A Reader With A Rather Long Name Indeed"
	long.PreferencesURL = "https://news.example/preferences/0123456789abcdef"
	var h, txt []byte
	for i, rc := range []Recipient{long, {Email: "short@example.org"}, fullRecipient, long} {
		wantH, wantT := p.Personalize(rc)
		h, txt = p.PersonalizeAppend(rc, h[:0], txt[:0])
		if !bytes.Equal(h, wantH) || !bytes.Equal(txt, wantT) {
			t.Fatalf("recipient %d: PersonalizeAppend into reused buffers differs from Personalize", i)
		}
	}
	if pre, _ := p.PersonalizeAppend(fullRecipient, []byte("prefix:"), nil); !bytes.HasPrefix(pre, []byte("prefix:<")) {
		t.Fatalf("PersonalizeAppend does not append: %q", pre[:20])
	}
}
