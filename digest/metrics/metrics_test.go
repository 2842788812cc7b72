package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/delivery"
	"newsdigest/subscribers"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestMetrics(t *testing.T) {
	m := New()
	for range 3 {
		m.Delivery(digest.DeliverySent)
	}
	m.Delivery(digest.DeliveryFailed)
	m.Delivery(digest.DeliverySuppressed)
	m.Retry()
	m.QueueDepth(10)
	m.QueueDepth(-4)
	m.EditionDone(3 * time.Second)
	m.FeedFetch(nil)
	m.FeedFetch(io.EOF)
	m.Bounce("hard")
	m.SubscriberChanged(subscribers.Subscriber{}, subscribers.Subscriber{Lists: map[string]subscribers.Membership{"a": {Status: subscribers.Pending}}})
	pending := subscribers.Subscriber{Lists: map[string]subscribers.Membership{"a": {Status: subscribers.Pending}}}
	confirmed := subscribers.Subscriber{Lists: map[string]subscribers.Membership{"a": {Status: subscribers.Confirmed}}}
	m.SubscriberChanged(pending, confirmed)
	m.SubscriberChanged(confirmed, subscribers.Subscriber{Lists: map[string]subscribers.Membership{"a": {Status: subscribers.Unsubscribed}}})
	m.SubscriberChanged(confirmed, confirmed) // no change, no count

	out := scrape(t, m)
	for _, want := range []string{
		"newsdigest_messages_sent_total 3", "newsdigest_messages_failed_total 1", "newsdigest_messages_suppressed_total 1",
		"newsdigest_messages_retried_total 1", "newsdigest_queue_depth 6", "newsdigest_edition_duration_seconds_count 1",
		"newsdigest_feed_fetches_total 2", "newsdigest_feed_errors_total 1", `newsdigest_bounces_total{kind="hard"} 1`,
		`newsdigest_bounces_total{kind="complaint"} 0`, "newsdigest_subscribes_total 1", "newsdigest_confirms_total 1",
		"newsdigest_unsubscribes_total 1", "newsdigest_send_rate 0.3", "go_goroutines",
	} {
		if !strings.Contains(out, want+"\n") && !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.Delivery(digest.DeliverySent)
	m.Retry()
	m.QueueDepth(1)
	m.EditionDone(time.Second)
	m.FeedFetch(nil)
	m.Bounce("soft")
	m.SubscriberChanged(subscribers.Subscriber{}, subscribers.Subscriber{})
}

func TestRateWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	w := newRateWindow(10, func() time.Time { return now })
	w.add(50)
	now = now.Add(5 * time.Second)
	w.add(50)
	if got := w.perSecond(); got != 10 {
		t.Errorf("rate = %g, want 10", got)
	}
	now = now.Add(7 * time.Second) // the first 50 fell out
	if got := w.perSecond(); got != 5 {
		t.Errorf("rate = %g, want 5", got)
	}
}

// The engine reports to Metrics through delivery.Metrics.
var _ delivery.Metrics = (*Metrics)(nil)

func TestDeliveriesByStatus(t *testing.T) {
	m := New()
	out := scrape(t, m)
	for _, st := range []string{"sent", "failed", "suppressed", "skipped"} {
		if want := `newsdigest_deliveries_total{status="` + st + `"} 0`; !strings.Contains(out, want+"\n") {
			t.Errorf("before any delivery, scrape lacks %q", want)
		}
	}
	for range 2 {
		m.Delivery(digest.DeliverySkipped)
	}
	m.Delivery(digest.DeliverySent)
	m.Delivery(digest.DeliverySuppressed)
	m.Delivery(digest.DeliveryQueued)        // not final: not counted
	m.Delivery(digest.DeliveryStatus("odd")) // unknown: no label of its own
	out = scrape(t, m)
	for _, want := range []string{
		`newsdigest_deliveries_total{status="skipped"} 2`, `newsdigest_deliveries_total{status="sent"} 1`,
		`newsdigest_deliveries_total{status="suppressed"} 1`, `newsdigest_deliveries_total{status="failed"} 0`,
		// A skipped delivery sends no message: the message counters
		// stay as they were.
		"newsdigest_messages_sent_total 1", "newsdigest_messages_suppressed_total 1", "newsdigest_messages_failed_total 0",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("scrape lacks %q", want)
		}
	}
	for _, bad := range []string{`status="queued"`, `status="odd"`} {
		if strings.Contains(out, bad) {
			t.Errorf("scrape has %s", bad)
		}
	}
}
