package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestParseSpec(t *testing.T) {
	for _, ok := range []string{"0 7 * * *", "CRON_TZ=Europe/Paris 0 7 * * *", "TZ=Asia/Kolkata 30 6 * * 1-5", "@daily", "local"} {
		if _, err := ParseSpec(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "0 7 * *", "CRON_TZ=Mars/Olympus 0 7 * * *", "61 7 * * *", "every morning"} {
		if _, err := ParseSpec(bad); err == nil || !strings.Contains(err.Error(), "schedule") {
			t.Errorf("%q: got %v, want a schedule error", bad, err)
		}
	}
}

func TestDecide(t *testing.T) {
	paris, err := ParseSpec("CRON_TZ=Europe/Paris 0 7 * * *")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	created := at("2026-11-01T00:00:00Z")
	for _, tc := range []struct {
		name     string
		last     string
		now      string
		want     Decision
		wantSlot string
	}{
		{"BeforeSlot", "2026-11-26T06:00:00Z", "2026-11-27T05:59:00Z", Wait, ""}, // 06:59 Paris
		{"OnTime", "2026-11-26T06:00:00Z", "2026-11-27T06:00:00Z", Run, "2026-11-27T06:00:00Z"},
		{"AlreadyRan", "2026-11-27T06:00:00Z", "2026-11-27T08:00:00Z", Wait, ""},
		{"CatchUpInsideLateness", "2026-11-26T06:00:00Z", "2026-11-27T08:59:00Z", Run, "2026-11-27T06:00:00Z"},
		{"MissedOutsideLateness", "2026-11-26T06:00:00Z", "2026-11-27T09:01:00Z", TooLate, "2026-11-27T06:00:00Z"},
		{"LongDowntimeOnlyLatest", "2026-11-20T06:00:00Z", "2026-11-27T07:00:00Z", Run, "2026-11-27T06:00:00Z"},
		{"NeverRanUsesCreation", "", "2026-11-01T06:30:00Z", Run, "2026-11-01T06:00:00Z"},
		// Summer time: 07:00 Paris is 05:00 UTC.
		{"SummerOffset", "2026-07-01T05:00:00Z", "2026-07-02T05:00:00Z", Run, "2026-07-02T05:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var last time.Time
			if tc.last != "" {
				last = at(tc.last)
			}
			since := created
			if tc.name == "SummerOffset" {
				since = at("2026-06-01T00:00:00Z")
			}
			if tc.name == "NeverRanUsesCreation" {
				since = at("2026-11-01T05:00:00Z")
			}
			got, slot := Decide(paris, last, since, at(tc.now), DefaultMaxLateness)
			gotSlot := ""
			if !slot.IsZero() && got != Wait {
				gotSlot = slot.UTC().Format(time.RFC3339)
			}
			if got != tc.want || gotSlot != tc.wantSlot {
				t.Errorf("got %s %s, want %s %s", got, gotSlot, tc.want, tc.wantSlot)
			}
		})
	}
	local, _ := ParseSpec("local")
	if d, _ := Decide(local, time.Time{}, created, at("2026-11-27T06:00:00Z"), time.Hour); d != Wait {
		t.Errorf("local list: %s, want wait (local lists are driven per subscriber)", d)
	}
}
