package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/delivery"
	"newsdigest/digest/schedule"
	"newsdigest/subscribers"
)

// LocalEditionID names the edition of a local-time list for the hour
// slot: readers due within the same hour (UTC) share it.
func LocalEditionID(list string, hour time.Time) string {
	return digest.EditionID(list, hour) + "-local"
}

// Reader returns the local-time delivery rules of sub: their time zone
// (UTC when unset or unknown), their hour (defaultHour when they chose
// none), daily or weekly, and their weekday (delivery.WeekdayOf).
func Reader(sub subscribers.Subscriber, defaultHour int, lastDate string) schedule.Reader {
	loc := time.UTC
	if sub.Timezone != "" {
		if l, err := time.LoadLocation(sub.Timezone); err == nil {
			loc = l
		}
	}
	h := sub.SendHour
	if h < 0 || h > 23 {
		h = defaultHour
	}
	return schedule.Reader{
		Loc: loc, Hour: h, Weekly: sub.Frequency == subscribers.Weekly,
		Weekday: delivery.WeekdayOf(sub), LastDate: lastDate,
	}
}

func (s *Scheduler) localDue(l subscribers.List, now time.Time) bool {
	s.mu.Lock()
	last := s.reconciled[l.Name]
	s.mu.Unlock()
	if last.IsZero() || now.Sub(last) >= s.reconcileEvery() || now.Before(last) {
		return true
	}
	due, err := s.Store.DueReaders(l.Name, now, 1)
	if err != nil {
		s.log().Error("scheduler: reading the next-send index", "list", l.Name, "err", err)
		return false
	}
	return len(due) > 0
}

func (s *Scheduler) reconcileEvery() time.Duration {
	if s.Reconcile > 0 {
		return s.Reconcile
	}
	return DefaultReconcile
}

// runLocal is a local-time list's job.
func (s *Scheduler) runLocal(ctx context.Context, l subscribers.List, now time.Time, resume bool) {
	if resume {
		s.resume(ctx, l, now)
	}
	s.mu.Lock()
	if s.reconciled == nil {
		s.reconciled = make(map[string]time.Time)
	}
	last := s.reconciled[l.Name]
	s.mu.Unlock()
	if last.IsZero() || now.Sub(last) >= s.reconcileEvery() || now.Before(last) {
		if err := s.reconcile(l, now); err != nil {
			s.log().Error("scheduler: reconciling the next-send index", "list", l.Name, "err", err)
		} else {
			s.mu.Lock()
			s.reconciled[l.Name] = now
			s.mu.Unlock()
		}
	}
	for ctx.Err() == nil {
		n, err := s.sendDue(ctx, l, now)
		if err != nil {
			s.log().Error("scheduler: local-time send", "list", l.Name, "err", err)
			return
		}
		if n < localBatch {
			return
		}
	}
}

// reconcile brings the list's next-send index in line with its confirmed
// subscribers: new ones get their next time, changed time zones, hours
// and frequencies move their entry, and those who left are removed.
func (s *Scheduler) reconcile(l subscribers.List, now time.Time) error {
	states, err := s.Store.ReaderStates(l.Name)
	if err != nil {
		return err
	}
	late := MaxLateness(l)
	seen := make(map[string]bool, len(states))
	changes := make(map[string]*schedule.ReaderState)
	flush := func() error {
		err := s.Store.SetReaders(l.Name, changes)
		clear(changes)
		return err
	}
	added, moved, removed := 0, 0, 0
	after := ""
	for {
		subs, err := s.Store.ConfirmedSubscribers(l.Name, after, 1000)
		if err != nil {
			return err
		}
		for _, sub := range subs {
			if sub.ID == "" {
				continue
			}
			seen[sub.ID] = true
			st, ok := states[sub.ID]
			if ok && !st.Next.After(now) {
				continue // due now: the send looks at them
			}
			want := schedule.Next(Reader(sub, s.defaultHour(), st.LastDate), now, late)
			if ok && st.Next.Equal(want) {
				continue
			}
			if ok {
				moved++
			} else {
				added++
			}
			changes[sub.ID] = &schedule.ReaderState{LastDate: st.LastDate, Next: want}
		}
		if len(changes) >= 1000 {
			if err := flush(); err != nil {
				return err
			}
		}
		if len(subs) < 1000 {
			break
		}
		after = subs[len(subs)-1].Email
	}
	for id := range states {
		if !seen[id] {
			changes[id] = nil
			removed++
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if added+moved+removed > 0 {
		s.log().Info("scheduler: local-time index updated", "list", l.Name, "added", added, "moved", moved, "removed", removed)
	}
	return nil
}

// sendDue queues and delivers the readers of the list due at now, at most
// localBatch of them, and returns how many entries it handled.
func (s *Scheduler) sendDue(ctx context.Context, l subscribers.List, now time.Time) (int, error) {
	due, err := s.Store.DueReaders(l.Name, now, localBatch)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	late := MaxLateness(l)
	var queue []schedule.Queued
	moves := make(map[string]*schedule.ReaderState)
	missed := 0
	for _, d := range due {
		sub, err := s.Store.GetSubscriberByID(d.SubscriberID)
		if err != nil || sub.StatusOn(l.Name) != subscribers.Confirmed {
			moves[d.SubscriberID] = nil // gone, or no longer confirmed
			continue
		}
		st, _, err := s.Store.ReaderState(l.Name, d.SubscriberID)
		if err != nil {
			return 0, err
		}
		r := Reader(sub, s.defaultHour(), st.LastDate)
		ok, _, date := schedule.Due(r, now, late)
		if ok {
			r.LastDate = date
			queue = append(queue, schedule.Queued{
				SubscriberID: sub.ID, Email: sub.Email, Date: date,
				Next: schedule.Next(r, now, late),
			})
			continue
		}
		if now.Sub(d.At) > late {
			missed++
			s.log().Warn("scheduler: reader's edition missed by more than the maximum lateness; skipped",
				"list", l.Name, "subscriber", sub.ID, "due", d.At.UTC().Format(time.RFC3339), "max_lateness", late)
		}
		moves[sub.ID] = &schedule.ReaderState{LastDate: st.LastDate, Next: schedule.Next(r, now, late)}
	}
	if err := s.Store.SetReaders(l.Name, moves); err != nil {
		return 0, err
	}
	if len(queue) == 0 {
		return len(due), nil
	}
	hour := now.UTC().Truncate(time.Hour)
	id := LocalEditionID(l.Name, hour)
	ed, _, err := s.Engine.StartWith(l.Name, delivery.StartOptions{Slot: hour, ID: id, NoRecipients: true, PerReader: true})
	if errors.Is(err, delivery.ErrNothingNew) {
		// No story at all: their date is done, nothing is sent.
		for _, q := range queue {
			moves[q.SubscriberID] = &schedule.ReaderState{LastDate: q.Date, Next: q.Next}
		}
		s.log().Info("scheduler: local-time readers due, but no stories; skipped", "list", l.Name, "readers", len(queue), "reason", err)
		return len(due), s.Store.SetReaders(l.Name, moves)
	}
	if err != nil {
		return 0, fmt.Errorf("edition %s: %w", id, err)
	}
	n, err := s.Store.QueueLocal(ed.ID, l.Name, queue)
	if err != nil {
		return 0, err
	}
	res, err := s.Engine.Deliver(ctx, ed.ID)
	if err != nil {
		return 0, fmt.Errorf("edition %s: %w", ed.ID, err)
	}
	s.log().Info("scheduler: local-time readers sent", "list", l.Name, "edition", ed.ID, "due", len(queue), "queued", n,
		"sent", res.Sent, "failed", res.Failed, "suppressed", res.Suppressed, "skipped", res.Skipped, "missed", missed)
	return len(due), nil
}
