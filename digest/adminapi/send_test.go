package adminapi

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"newsdigest/digest"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/delivery"
	"newsdigest/subscribers"
)

func TestPutListRefusesABadSchedule(t *testing.T) {
	_, _, cl := start(t)
	l := subscribers.List{Name: "daily", Title: "Daily", From: "digest@gazette.example"}
	for _, bad := range []string{"every day", "99 99 * * *", "CRON_TZ=Bad/Zone 0 7 * * *"} {
		l.Schedule = bad
		err := cl.PutList(l)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "schedule") {
			t.Errorf("schedule %q: %v, want 400 naming the schedule", bad, err)
		}
	}
	l.Schedule = "CRON_TZ=Asia/Kolkata 30 6 * * *"
	if err := cl.PutList(l); err != nil {
		t.Errorf("good schedule: %v", err)
	}
}

func TestSendEndpoint(t *testing.T) {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "nd.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.PutList(subscribers.List{Name: "daily", Title: "Daily", From: "digest@gazette.example"}); err != nil {
		t.Fatal(err)
	}
	sent := map[string]bool{}
	trigger := func(list string, forceNew bool) (digest.Edition, error) {
		id := list + "-20261127-0000"
		if sent[id] && !forceNew {
			return digest.Edition{ID: id}, fmt.Errorf("%w: edition %s was already sent; refused", delivery.ErrEditionExists, id)
		}
		if forceNew {
			id += "-2"
		}
		sent[id] = true
		return digest.Edition{ID: id}, nil
	}
	h, err := (&Server{Service: Direct{st}, Token: testToken, Trigger: trigger}).Handler()
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	defer ts.Close()
	cl := &Client{BaseURL: ts.URL, Token: testToken}

	res, err := cl.Send("daily", false)
	if err != nil || res.Edition != "daily-20261127-0000" {
		t.Fatalf("first send: %+v %v", res, err)
	}
	_, err = cl.Send("daily", false)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 409 || !errors.Is(err, boltstore.ErrExists) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("second send: %v, want 409 refused", err)
	}
	if res, err := cl.Send("daily", true); err != nil || res.Edition != "daily-20261127-0000-2" {
		t.Errorf("forced: %+v %v", res, err)
	}
	if _, err := cl.Send("nope", false); !errors.Is(err, boltstore.ErrNotFound) {
		t.Errorf("unknown list: %v", err)
	}
}
