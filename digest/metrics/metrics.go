// Package metrics holds newsdigest's Prometheus metrics, all named under
// newsdigest_, in a registry of their own (no globals): the daemon makes
// one Metrics, hands it to the components that count (the delivery
// engine, the bounce processor, the feed poller, the subscriber store) and
// serves Handler on the admin address.
//
// Every method is safe for concurrent use and does nothing on a nil
// *Metrics, so components can call it without checking.
package metrics

import (
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"newsdigest/digest"
	"newsdigest/subscribers"
)

// Metrics is the set of newsdigest metrics and their registry.
type Metrics struct {
	reg *prometheus.Registry

	sent, failed, suppressed, retried prometheus.Counter
	queueDepth                        prometheus.Gauge
	editionDuration                   prometheus.Histogram
	feedFetches, feedErrors           prometheus.Counter
	subscribes, confirms, unsubscribe prometheus.Counter
	bounces, deliveries               *prometheus.CounterVec

	rate *rateWindow
}

// New returns metrics in a new registry, with the Go runtime and process
// collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), rate: newRateWindow(10, time.Now)}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "newsdigest", Name: name, Help: help})
		m.reg.MustRegister(c)
		return c
	}
	m.sent = counter("messages_sent_total", "Digest messages accepted by the SMTP relay.")
	m.failed = counter("messages_failed_total", "Digest messages that failed for good (5xx, or 4xx after every retry).")
	m.suppressed = counter("messages_suppressed_total", "Deliveries skipped: address suppressed or no longer confirmed.")
	m.retried = counter("messages_retried_total", "Retries after a temporary failure (4xx or a dropped connection).")
	m.feedFetches = counter("feed_fetches_total", "Feed fetches attempted.")
	m.feedErrors = counter("feed_errors_total", "Feed fetches that failed.")
	m.subscribes = counter("subscribes_total", "New (pending) subscriptions to a list.")
	m.confirms = counter("confirms_total", "Subscriptions confirmed (double opt-in).")
	m.unsubscribe = counter("unsubscribes_total", "Unsubscriptions from a list.")
	m.bounces = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "newsdigest", Name: "bounces_total",
		Help: "Bounce and complaint reports processed, by kind: hard, soft, complaint, other (kept aside).",
	}, []string{"kind"})
	for _, k := range []string{"hard", "soft", "complaint", "other"} {
		m.bounces.WithLabelValues(k) // present at 0
	}
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "newsdigest", Name: "deliveries_total",
		Help: "Deliveries that reached a final state, by status: sent, failed, suppressed, skipped (nothing new for the recipient: no message).",
	}, []string{"status"})
	for _, st := range deliveryStatuses {
		m.deliveries.WithLabelValues(string(st)) // present at 0
	}
	m.queueDepth = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "newsdigest", Name: "queue_depth",
		Help: "Deliveries still queued in the editions being sent."})
	m.editionDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "newsdigest", Name: "edition_duration_seconds",
		Help:    "Time to send an edition (one run of the sender).",
		Buckets: prometheus.ExponentialBuckets(1, 4, 8), // 1 s … ~4.5 h
	})
	sendRate := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "newsdigest", Name: "send_rate",
		Help: "Messages sent per second over the last 10 seconds."}, func() float64 { return m.rate.perSecond() })
	m.reg.MustRegister(m.bounces, m.deliveries, m.queueDepth, m.editionDuration, sendRate,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry the metrics are in (to add more, or gather in
// tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format (GET /metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// deliveryStatuses are the final delivery statuses, the label values of
// newsdigest_deliveries_total.
var deliveryStatuses = []digest.DeliveryStatus{
	digest.DeliverySent, digest.DeliveryFailed, digest.DeliverySuppressed, digest.DeliverySkipped,
}

// Delivery counts a delivery that reached a final state: every final
// status in newsdigest_deliveries_total{status}, and sent, failed and
// suppressed also in their messages_*_total counters. A status that is
// not final (queued) or unknown is not counted.
func (m *Metrics) Delivery(st digest.DeliveryStatus) {
	if m == nil {
		return
	}
	if slices.Contains(deliveryStatuses, st) {
		m.deliveries.WithLabelValues(string(st)).Inc()
	}
	switch st {
	case digest.DeliverySent:
		m.sent.Inc()
		m.rate.add(1)
	case digest.DeliveryFailed:
		m.failed.Inc()
	case digest.DeliverySuppressed:
		m.suppressed.Inc()
	}
}

// Retry counts a retry after a temporary failure.
func (m *Metrics) Retry() {
	if m != nil {
		m.retried.Inc()
	}
}

// QueueDepth adds delta to the number of queued deliveries (positive when
// a run starts, negative as deliveries finish).
func (m *Metrics) QueueDepth(delta int) {
	if m != nil {
		m.queueDepth.Add(float64(delta))
	}
}

// EditionDone observes how long a run of the sender took.
func (m *Metrics) EditionDone(d time.Duration) {
	if m != nil {
		m.editionDuration.Observe(d.Seconds())
	}
}

// FeedFetch counts a feed fetch and whether it failed.
func (m *Metrics) FeedFetch(err error) {
	if m == nil {
		return
	}
	m.feedFetches.Inc()
	if err != nil {
		m.feedErrors.Inc()
	}
}

// Bounce counts a processed report by kind (hard, soft, complaint, other).
func (m *Metrics) Bounce(kind string) {
	if m != nil {
		m.bounces.WithLabelValues(kind).Inc()
	}
}

// SubscriberChanged counts subscribes, confirms and unsubscribes from the
// difference between a subscriber's stored record (old; zero when new)
// and the one being saved.
func (m *Metrics) SubscriberChanged(old, new subscribers.Subscriber) {
	if m == nil {
		return
	}
	for list, mem := range new.Lists {
		was := old.StatusOn(list)
		if was == mem.Status {
			continue
		}
		switch mem.Status {
		case subscribers.Pending:
			m.subscribes.Inc()
		case subscribers.Confirmed:
			if was == "" || was == subscribers.Unsubscribed {
				m.subscribes.Inc()
			}
			m.confirms.Inc()
		case subscribers.Unsubscribed:
			m.unsubscribe.Inc()
		}
	}
}

// rateWindow counts events per second over the last n seconds.
type rateWindow struct {
	mu    sync.Mutex
	now   func() time.Time
	slots []int64
	secs  []int64 // the Unix second each slot counts
}

func newRateWindow(n int, now func() time.Time) *rateWindow {
	return &rateWindow{now: now, slots: make([]int64, n), secs: make([]int64, n)}
}

func (w *rateWindow) add(k int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.now().Unix()
	i := int(s % int64(len(w.slots)))
	if w.secs[i] != s {
		w.secs[i], w.slots[i] = s, 0
	}
	w.slots[i] += k
}

// perSecond averages the last n complete and current seconds.
func (w *rateWindow) perSecond() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.now().Unix()
	var sum int64
	for i, sec := range w.secs {
		if s-sec < int64(len(w.slots)) {
			sum += w.slots[i]
		}
	}
	return float64(sum) / float64(len(w.slots))
}
