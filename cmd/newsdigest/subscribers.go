package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"newsdigest/digest/boltstore"
	"newsdigest/subscribers"
)

func runSubscribers(ctx context.Context, m *Main, args []string) error {
	return subcommand(ctx, m, "subscribers", args, map[string]runner{
		"add": subsAdd, "remove": subsRemove, "show": subsShow, "list": subsList,
		"import": subsImport, "export": subsExport,
		"unsubscribe": subsSetStatus(subscribers.Unsubscribed), "resubscribe": subsSetStatus(subscribers.Confirmed),
	})
}

func subsAdd(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "subscribers add", "EMAIL [--name N] [--list L]... [--pending] [--timezone TZ] [--send-hour H] [--frequency daily|weekly] [--topics a;b]",
		"Add a subscriber, confirmed on each --list (pending with --pending). With no --list, the only list there is.")
	name := c.fs.String("name", "", "name")
	var lists stringList
	c.fs.Var(&lists, "list", "list `L` (repeatable)")
	pending := c.fs.Bool("pending", false, "add as pending (awaiting double opt-in) instead of confirmed")
	tz := c.fs.String("timezone", "", "IANA time zone, e.g. Europe/Paris")
	hour := c.fs.Int("send-hour", -1, "preferred local hour 0–23 (-1 = list schedule)")
	freq := c.fs.String("frequency", subscribers.Daily, "daily or weekly")
	topics := c.fs.String("topics", "", "topics separated by ';'")
	pos, err := c.parseArgs(args, m.Stdout, 1, 1)
	if err != nil {
		return err
	}
	m.create = true
	if err := m.openAdmin(); err != nil {
		return err
	}
	if lists, err = m.listsOrOnly(lists); err != nil {
		return err
	}
	// Validate through the importer so that the CLI and imports agree.
	row, err := singleRow(map[string]string{
		"email": pos[0], "name": *name, "timezone": *tz, "send_hour": hourString(*hour),
		"frequency": *freq, "topics": *topics,
	}, lists, pending, "cli")
	if err != nil {
		return err
	}
	for _, l := range lists {
		if _, err := m.admin.GetList(l); err != nil {
			return fmt.Errorf("list %s: %w", l, err)
		}
	}
	sub := row.Subscriber
	if err := m.admin.AddSubscriber(sub); err != nil {
		if errors.Is(err, boltstore.ErrExists) {
			return fmt.Errorf("%s is already a subscriber: use 'newsdigest subscribers show %s'", sub.Email, sub.Email)
		}
		return err
	}
	if m.g.json {
		sub, _ = m.admin.GetSubscriber(sub.Email)
		return m.printJSON(sub)
	}
	fmt.Fprintf(m.Stdout, "added %s to %s\n", sub.Email, strings.Join(lists, ", "))
	return nil
}

func hourString(h int) string {
	if h < 0 {
		return ""
	}
	return fmt.Sprint(h)
}

// singleRow validates one subscriber given as CSV fields with the importer.
func singleRow(fields map[string]string, lists []string, pending *bool, source string) (subscribers.Row, error) {
	cols := []string{"email", "name", "timezone", "send_hour", "frequency", "topics"}
	var b strings.Builder
	b.WriteString(strings.Join(cols, ",") + "\n")
	for i, k := range cols {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + strings.ReplaceAll(fields[k], `"`, `""`) + `"`)
	}
	b.WriteByte('\n')
	status := subscribers.Confirmed
	if pending != nil && *pending {
		status = subscribers.Pending
	}
	im, err := subscribers.NewCSVImporter(strings.NewReader(b.String()), subscribers.ImportOptions{
		Lists: lists, Status: status, Source: source, Now: time.Now(),
	})
	if err != nil {
		return subscribers.Row{}, err
	}
	row, err := im.Next()
	if err != nil {
		return row, err
	}
	if row.Err != nil {
		return row, row.Err
	}
	return row, nil
}

func (m *Main) oneEmailCommand(name, help string, args []string) (string, error) {
	c := newCommand(&m.g, name, "EMAIL", help)
	pos, err := c.parse(args, m.Stdout)
	if err != nil {
		return "", err
	}
	if err := c.args(pos, 1, 1); err != nil {
		return "", err
	}
	email, err := subscribers.NormalizeEmail(pos[0])
	if err != nil {
		return "", err
	}
	return email, m.openAdmin()
}

func subsRemove(_ context.Context, m *Main, args []string) error {
	email, err := m.oneEmailCommand("subscribers remove", "Delete a subscriber and everything stored about them.", args)
	if err != nil {
		return err
	}
	if err := m.admin.DeleteSubscriber(email); err != nil {
		return fmt.Errorf("%s: %w", email, err)
	}
	fmt.Fprintf(m.Stdout, "removed %s\n", email)
	return nil
}

func subsShow(_ context.Context, m *Main, args []string) error {
	email, err := m.oneEmailCommand("subscribers show", "Show one subscriber.", args)
	if err != nil {
		return err
	}
	s, err := m.admin.GetSubscriber(email)
	if err != nil {
		return fmt.Errorf("%s: %w", email, err)
	}
	evs, err := m.subscriberEvents(s.Email)
	if err != nil {
		return fmt.Errorf("%s: events: %w", email, err)
	}
	if m.g.json {
		return m.printJSON(subscriberWithEvents{s, evs})
	}
	defer printEvents(m.Stdout, evs)
	var lists []string
	for name, mem := range s.Lists {
		lists = append(lists, fmt.Sprintf("%s (%s since %s)", name, mem.Status, fmtTime(mem.Since)))
	}
	var attrs []string
	for k, v := range s.Attrs {
		attrs = append(attrs, k+"="+v)
	}
	kv(m.Stdout, "email", s.Email, "name", orDash(s.Name), "lists", orDash(strings.Join(sortStrings(lists), "; ")),
		"timezone", orDash(s.Timezone), "send hour", orDash(hourString(s.SendHour)), "frequency", s.Frequency,
		"topics", orDash(strings.Join(s.Topics, "; ")), "attributes", orDash(strings.Join(sortStrings(attrs), "; ")),
		"consent", orDash(strings.TrimSpace(fmt.Sprintf("%s %s %s", fmtTimeOpt(s.Consent.Time), s.Consent.Source, s.Consent.IP))),
		"created", fmtTime(s.Created), "updated", fmtTime(s.Updated))
	return nil
}

func fmtTimeOpt(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmtTime(t)
}

func subsSetStatus(st subscribers.Status) runner {
	verb := "unsubscribe"
	if st == subscribers.Confirmed {
		verb = "resubscribe"
	}
	return func(_ context.Context, m *Main, args []string) error {
		c := newCommand(&m.g, "subscribers "+verb, "EMAIL [--list L]", "Set a subscriber's status on a list to "+string(st)+".")
		list := c.fs.String("list", "", "list (default: the only list)")
		pos, err := c.parseArgs(args, m.Stdout, 1, 1)
		if err != nil {
			return err
		}
		email, err := subscribers.NormalizeEmail(pos[0])
		if err != nil {
			return err
		}
		if err := m.openAdmin(); err != nil {
			return err
		}
		name, err := m.listName(*list)
		if err != nil {
			return err
		}
		s, err := m.admin.GetSubscriber(email)
		if err != nil {
			return fmt.Errorf("%s: %w", email, err)
		}
		s.SetStatus(name, st, time.Now())
		if err := m.admin.PutSubscriber(s); err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "%s is %s on %s\n", email, st, name)
		return nil
	}
}

func subsList(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "subscribers list", "[--list L] [--status S]", "List subscribers, optionally of one list and status.")
	list := c.fs.String("list", "", "only subscribers of list L")
	status := c.fs.String("status", "", "only this status (pending, confirmed, unsubscribed, bounced, complained)")
	_, err := c.parseArgs(args, m.Stdout, 0, 0)
	if err != nil {
		return err
	}
	if *status != "" && !subscribers.Status(*status).Valid() {
		return usageError{fmt.Sprintf("--status %q is not a status", *status)}
	}
	if err := m.openAdmin(); err != nil {
		return err
	}
	subs, err := m.admin.Subscribers(boltstore.SubscriberQuery{List: *list, Status: subscribers.Status(*status)})
	if err != nil {
		return err
	}
	if m.g.json {
		if subs == nil {
			subs = []subscribers.Subscriber{}
		}
		return m.printJSON(subs)
	}
	t := m.table("EMAIL", "NAME", "LISTS", "TIMEZONE", "HOUR", "FREQUENCY")
	for _, s := range subs {
		var ls []string
		for n, mem := range s.Lists {
			ls = append(ls, n+":"+string(mem.Status))
		}
		t.row(s.Email, truncate(orDash(s.Name), 30), strings.Join(sortStrings(ls), " "), orDash(s.Timezone), orDash(hourString(s.SendHour)), s.Frequency)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "%d subscribers\n", len(subs))
	return nil
}

func subsImport(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "subscribers import", "[--list L]... [--update] [--pending] FILE.csv|FILE.json|-",
		"Import subscribers from CSV (header row; columns email, name, timezone, send_hour, frequency, topics; others become attributes) or a JSON array. Existing subscribers are skipped unless --update. Every rejected row is reported with its line and reason; the rest are imported. CSV values a spreadsheet would read as formulas are imported as text, each with a warning.")
	var lists stringList
	c.fs.Var(&lists, "list", "put each subscriber on list `L` (repeatable; default: the only list)")
	update := c.fs.Bool("update", false, "update existing subscribers instead of skipping them")
	pending := c.fs.Bool("pending", false, "import as pending instead of confirmed")
	format := c.fs.String("format", "", "csv or json (default: from the file name)")
	pos, err := c.parseArgs(args, m.Stdout, 1, 1)
	if err != nil {
		return err
	}
	m.create = true
	if err := m.openAdmin(); err != nil {
		return err
	}
	if lists, err = m.listsOrOnly(lists); err != nil {
		return err
	}
	for _, l := range lists {
		if _, err := m.admin.GetList(l); err != nil {
			return fmt.Errorf("list %s: %w", l, err)
		}
	}
	var r io.Reader = m.Stdin
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	status := subscribers.Confirmed
	if *pending {
		status = subscribers.Pending
	}
	opts := subscribers.ImportOptions{Lists: lists, Status: status, Source: "import", Now: time.Now()}
	var im *subscribers.Importer
	isJSON := *format == "json" || (*format == "" && strings.EqualFold(filepath.Ext(pos[0]), ".json"))
	if isJSON {
		im, err = subscribers.NewJSONImporter(r, opts)
	} else {
		im, err = subscribers.NewCSVImporter(r, opts)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	var rep subscribers.Report
	warn := func(ws []subscribers.Warning) {
		rep.Warnings = append(rep.Warnings, ws...)
		if !m.g.json {
			for _, w := range ws {
				fmt.Fprintf(m.Stderr, "%s:%d: warning: %s\n", pos[0], w.Line, w)
			}
		}
	}
	warn(im.HeaderWarnings())
	var batch []subscribers.Row
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		a, u, s, err := m.admin.UpsertSubscribers(batch, *update)
		rep.Added += a
		rep.Updated += u
		rep.Skipped += s
		batch = batch[:0]
		return err
	}
	for {
		row, err := im.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			flush()
			return fmt.Errorf("%s: %w (imported so far: %s)", pos[0], err, rep)
		}
		if row.Err != nil {
			rep.Rejected = append(rep.Rejected, row)
			if !m.g.json {
				fmt.Fprintf(m.Stderr, "%s:%d: %v\n", pos[0], row.Line, row.Err)
			}
			continue
		}
		warn(row.Warnings)
		batch = append(batch, row)
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if m.g.json {
		type rejected struct {
			Line   int    `json:"line"`
			Reason string `json:"reason"`
		}
		type warning struct {
			Line   int    `json:"line"`
			Column string `json:"column"`
			Value  string `json:"value"`
			Reason string `json:"reason"`
		}
		out := struct {
			Added    int        `json:"added"`
			Updated  int        `json:"updated"`
			Skipped  int        `json:"skipped"`
			Rejected []rejected `json:"rejected"`
			Warnings []warning  `json:"warnings"`
		}{rep.Added, rep.Updated, rep.Skipped, []rejected{}, []warning{}}
		for _, r := range rep.Rejected {
			out.Rejected = append(out.Rejected, rejected{r.Line, r.Err.Error()})
		}
		for _, w := range rep.Warnings {
			out.Warnings = append(out.Warnings, warning{w.Line, w.Column, w.Value, w.Reason})
		}
		return m.printJSON(out)
	}
	fmt.Fprintln(m.Stdout, rep.String())
	return nil
}

func subsExport(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "subscribers export", "[--list L] [--format csv|json] [--out FILE]", "Export subscribers as CSV (default) or JSON.")
	list := c.fs.String("list", "", "only subscribers of list L")
	format := c.fs.String("format", "csv", "csv or json")
	outPath := c.fs.String("out", "", "write to FILE instead of standard output")
	_, err := c.parseArgs(args, m.Stdout, 0, 0)
	if err != nil {
		return err
	}
	if m.g.json {
		*format = "json"
	}
	if *format != "csv" && *format != "json" {
		return usageError{fmt.Sprintf("--format %q: use csv or json", *format)}
	}
	if err := m.openAdmin(); err != nil {
		return err
	}
	subs, err := m.admin.Subscribers(boltstore.SubscriberQuery{List: *list})
	if err != nil {
		return err
	}
	w := m.Stdout
	if *outPath != "" {
		f, err := os.OpenFile(*outPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if *format == "json" {
		if subs == nil {
			subs = []subscribers.Subscriber{}
		}
		return subscribers.WriteJSON(w, subs)
	}
	return subscribers.WriteCSV(w, subs, *list)
}

// listsOrOnly returns the lists given with --list, or the only list there
// is when none was given.
func (m *Main) listsOrOnly(lists stringList) (stringList, error) {
	if len(lists) > 0 {
		return lists, nil
	}
	l, err := m.listName("")
	if err != nil {
		return nil, err
	}
	return stringList{l}, nil
}
