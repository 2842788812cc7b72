package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"newsdigest/digest/adminapi"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/schedule"
	"newsdigest/digest/scheduler"
	"newsdigest/subscribers"
)

func runLists(ctx context.Context, m *Main, args []string) error {
	return subcommand(ctx, m, "lists", args, map[string]runner{
		"add": listsAddSet(true), "set": listsAddSet(false),
		"list": listsList, "show": listsShow, "remove": listsRemove,
	})
}

// subcommand dispatches "GROUP VERB ...".
func subcommand(ctx context.Context, m *Main, group string, args []string, verbs map[string]runner) error {
	args = hoistGlobals(args) // "lists --db x.db show daily"
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		names := make([]string, 0, len(verbs))
		for v := range verbs {
			names = append(names, v)
		}
		fmt.Fprintf(m.Stdout, "Usage: newsdigest %s VERB [arguments] [flags]\nVerbs: %s\nRun 'newsdigest %s VERB --help' for details.\n", group, strings.Join(sortStrings(names), ", "), group)
		if len(args) == 0 {
			return usageError{"missing verb for " + group}
		}
		return nil
	}
	run, ok := verbs[args[0]]
	if !ok {
		return usageError{fmt.Sprintf("%s: unknown verb %q", group, args[0])}
	}
	return run(ctx, m, args[1:])
}

func listsAddSet(add bool) runner {
	return func(_ context.Context, m *Main, args []string) error {
		verb := "set"
		if add {
			verb = "add"
		}
		c := newCommand(&m.g, "lists "+verb, "NAME [--title T] [--from ADDR] [--reply-to ADDR] [--schedule SPEC] [--max-lateness DUR] [--top N] [--recent N] [--window DUR] [--min-stories N] [--category-cap N] [--intro TEXT] [--subject TEXT]",
			`Create (add) or change (set) a list. Unset flags keep their value on set.
--schedule is a cron spec ("CRON_TZ=Europe/Paris 0 7 * * *", "@daily") or
"local" (each subscriber at their own hour in their time zone); "" removes
it (manual sends only). --intro and --subject are the editor's for the
next edition only: the next edition made (scheduled or sent by hand)
uses them, then they are cleared; "" clears them now.`)
		title := c.fs.String("title", "", "title shown in emails")
		from := c.fs.String("from", "", "From address, \"Name <addr>\" (default mail.from in config)")
		replyTo := c.fs.String("reply-to", "", "Reply-To address")
		schedule := c.fs.String("schedule", "", "cron spec (\"CRON_TZ=Europe/Paris 0 7 * * *\") or \"local\"")
		maxLate := c.fs.Duration("max-lateness", 0, "how late a scheduled edition may still go out (default 3h)")
		intro := c.fs.String("intro", "", "the editor's intro for the next edition (blank lines separate paragraphs)")
		subject := c.fs.String("subject", "", "the subject of the next edition (default: the subject template)")
		top := c.fs.Int("top", 0, "stories in \"top\" (default 5)")
		recent := c.fs.Int("recent", 0, "stories in \"recent\" (default 5)")
		window := c.fs.Duration("window", 0, "only stories published within this window (default 48h)")
		minStories := c.fs.Int("min-stories", 0, "skip the edition with fewer new stories (default 1)")
		catCap := c.fs.Int("category-cap", 0, "at most N top stories per category (0 = no cap)")
		pos, err := c.parseArgs(args, m.Stdout, 1, 1)
		if err != nil {
			return err
		}
		m.create = add
		if err := m.openAdmin(); err != nil {
			return err
		}
		set := map[string]bool{}
		c.fs.Visit(func(f *flagT) { set[f.Name] = true })
		l, err := m.admin.GetList(pos[0])
		switch {
		case add && err == nil:
			return fmt.Errorf("list %s already exists: use 'newsdigest lists set %s'", pos[0], pos[0])
		case add && errors.Is(err, boltstore.ErrNotFound):
			l = subscribers.List{Name: pos[0], Title: pos[0], From: m.cfg.Mail.From, ReplyTo: m.cfg.Mail.ReplyTo, Created: time.Now()}
		case err != nil:
			return err
		}
		if set["title"] {
			l.Title = *title
		}
		if set["from"] {
			l.From = *from
		}
		if set["reply-to"] {
			l.ReplyTo = *replyTo
		}
		if set["schedule"] {
			l.Schedule = strings.TrimSpace(*schedule)
		}
		if set["max-lateness"] {
			if *maxLate < 0 {
				return usageError{"--max-lateness must not be negative"}
			}
			l.MaxLateness = *maxLate
		}
		if set["intro"] {
			l.NextIntro = strings.TrimSpace(*intro)
		}
		if set["subject"] {
			l.NextSubject = strings.TrimSpace(*subject)
		}
		if set["top"] {
			l.TopCount = *top
		}
		if set["recent"] {
			l.RecentCount = *recent
		}
		if set["window"] {
			l.Window = *window
		}
		if set["min-stories"] {
			l.MinStories = *minStories
		}
		if set["category-cap"] {
			l.CategoryCap = *catCap
		}
		// The same check the admin API makes, before anything is saved.
		if err := adminapi.CheckList(l); err != nil {
			return err
		}
		if err := m.admin.PutList(l); err != nil {
			return err
		}
		if m.g.json {
			return m.printJSON(l)
		}
		fmt.Fprintf(m.Stdout, "list %s saved\n", l.Name)
		return nil
	}
}

func listsList(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "lists list", "", "Show every list with its subscriber counts.")
	_, err := c.parseArgs(args, m.Stdout, 0, 0)
	if err != nil {
		return err
	}
	if err := m.openAdmin(); err != nil {
		return err
	}
	ls, err := m.admin.Lists()
	if err != nil {
		return err
	}
	type row struct {
		subscribers.List
		Confirmed int `json:"confirmed"`
		Pending   int `json:"pending"`
	}
	rows := make([]row, len(ls))
	for i, l := range ls {
		rows[i].List = l
		if rows[i].Confirmed, err = m.admin.CountSubscribers(l.Name, subscribers.Confirmed); err != nil {
			return err
		}
		if rows[i].Pending, err = m.admin.CountSubscribers(l.Name, subscribers.Pending); err != nil {
			return err
		}
	}
	if m.g.json {
		return m.printJSON(rows)
	}
	t := m.table("NAME", "TITLE", "FROM", "SCHEDULE", "CONFIRMED", "PENDING")
	for _, r := range rows {
		t.row(r.Name, truncate(r.Title, 30), r.From, orDash(r.Schedule), r.Confirmed, r.Pending)
	}
	return t.flush()
}

func listsShow(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "lists show", "NAME", "Show one list's settings (the values in effect: defaults where none is set), its confirmed subscribers and, for a cron schedule, the scheduler's last slot and run.")
	pos, err := c.parseArgs(args, m.Stdout, 1, 1)
	if err != nil {
		return err
	}
	if err := m.openAdmin(); err != nil {
		return err
	}
	l, err := m.admin.GetList(pos[0])
	if err != nil {
		return fmt.Errorf("list %s: %w", pos[0], err)
	}
	confirmed, err := m.admin.CountSubscribers(l.Name, subscribers.Confirmed)
	if err != nil {
		return err
	}
	var st schedule.ListState
	if l.Schedule != "" && l.Schedule != "local" {
		if st, err = m.admin.GetListSchedule(l.Name); err != nil {
			return err
		}
	}
	// The values in effect, under the list's own keys.
	p := policyOf(l)
	eff := l
	eff.TopCount, eff.RecentCount, eff.Window, eff.MinStories, eff.CategoryCap = p.TopCount, p.RecentCount, p.Window, p.MinStories, p.CategoryCap
	eff.MaxLateness = scheduler.MaxLateness(l)
	if m.g.json {
		return m.printJSON(struct {
			subscribers.List
			Confirmed   int       `json:"confirmed"`
			LastSlot    time.Time `json:"last_slot,omitzero"`
			LastEdition string    `json:"last_edition,omitempty"`
			LastRun     string    `json:"last_run,omitempty"`
		}{eff, confirmed, st.LastSlot, st.LastEdition, st.LastResult})
	}
	kv(m.Stdout, "name", l.Name, "title", l.Title, "from", l.From, "reply-to", orDash(l.ReplyTo),
		"schedule", orDash(l.Schedule), "max lateness", eff.MaxLateness,
		"top stories", p.TopCount, "recent stories", p.RecentCount,
		"window", p.Window, "min stories", p.MinStories, "category cap", p.CategoryCap,
		"next intro", orDash(truncate(l.NextIntro, 60)), "next subject", orDash(l.NextSubject),
		"confirmed subscribers", confirmed, "created", fmtTime(l.Created))
	if !st.LastSlot.IsZero() {
		kv(m.Stdout, "last slot", fmtTime(st.LastSlot), "last run", st.LastResult)
	}
	return nil
}

func listsRemove(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "lists remove", "NAME [--yes]", "Delete a list and every subscriber's membership of it (their status and consent on it). Asks first unless --yes.")
	yes := c.fs.Bool("yes", false, "do not ask for confirmation")
	pos, err := c.parseArgs(args, m.Stdout, 1, 1)
	if err != nil {
		return err
	}
	if err := m.openAdmin(); err != nil {
		return err
	}
	if !*yes {
		ok, err := m.confirm(fmt.Sprintf("Remove list %s and every subscriber's membership of it?", pos[0]))
		if err != nil || !ok {
			return err
		}
	}
	if err := m.admin.DeleteList(pos[0]); err != nil {
		return fmt.Errorf("list %s: %w", pos[0], err)
	}
	fmt.Fprintf(m.Stdout, "list %s removed\n", pos[0])
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
