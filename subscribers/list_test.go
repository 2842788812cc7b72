package subscribers

import (
	"strings"
	"testing"
)

func TestListValidate(t *testing.T) {
	ok := List{Name: "daily", Title: "The Daily", From: "Gazette <digest@gazette.example>"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid list: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*List)
		want string
	}{
		{"BadName", func(l *List) { l.Name = "Bad Name" }, "list name"},
		{"NoFrom", func(l *List) { l.From = "" }, "from address is required"},
		{"BadFrom", func(l *List) { l.From = "not an address" }, "from"},
		{"CRLFInTitle", func(l *List) { l.Title = "Title\r\nBcc: x@evil.example" }, "title must not contain line breaks"},
		{"NELInTitle", func(l *List) { l.Title = "Title\u0085x" }, "title must not contain"},
		{"CRLFInFrom", func(l *List) { l.From = "Gazette <digest@gazette.example>\r\nBcc: x@evil.example" }, "from must not contain"},
		{"LongTitle", func(l *List) { l.Title = strings.Repeat("x", 201) }, "longer than 200"},
		{"NegativeCount", func(l *List) { l.TopCount = -1 }, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := ok
			tc.edit(&l)
			if err := l.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
