package main

import (
	"fmt"
	"time"

	"newsdigest/digest/feed"
	"newsdigest/digest/poller"
)

// FeedsConfig is the feed poller of serve and `feeds fetch`.
type FeedsConfig struct {
	Poll       bool     `toml:"poll"`        // serve polls feeds; false: only `feeds fetch` does
	Interval   Duration `toml:"interval"`    // poll interval of feeds without their own
	MaxBackoff Duration `toml:"max_backoff"` // longest wait after failures
	Timeout    Duration `toml:"timeout"`     // per fetch, connect to last byte
	MaxBytes   int      `toml:"max_bytes"`   // body size limit
}

// TrackingConfig is click tracking in digests.
type TrackingConfig struct {
	// Clicks sends story links through BASE/c/{token}, counted per
	// edition and story; false leaves the original links in the email.
	Clicks bool `toml:"clicks"`
}

func defaultFeedsConfig() FeedsConfig {
	return FeedsConfig{
		Poll:       true,
		Interval:   Duration{poller.DefaultInterval},
		MaxBackoff: Duration{poller.DefaultMaxBackoff},
		Timeout:    Duration{feed.DefaultTimeout},
		MaxBytes:   feed.DefaultMaxBytes,
	}
}

// minFeedInterval keeps a misconfigured poller from hammering a site.
const minFeedInterval = time.Minute

func (c Config) validateFeeds() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Feeds.Interval.Duration < minFeedInterval {
		bad("feeds.interval", "%s is shorter than %s", c.Feeds.Interval.Duration, minFeedInterval)
	}
	if c.Feeds.MaxBackoff.Duration < c.Feeds.Interval.Duration {
		bad("feeds.max_backoff", "%s is shorter than feeds.interval (%s)", c.Feeds.MaxBackoff.Duration, c.Feeds.Interval.Duration)
	}
	if c.Feeds.Timeout.Duration <= 0 {
		bad("feeds.timeout", "must be positive (e.g. \"15s\")")
	}
	if c.Feeds.MaxBytes < 1<<10 {
		bad("feeds.max_bytes", "%d is less than 1024 bytes", c.Feeds.MaxBytes)
	}
	return errs
}
