package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"newsdigest/digest/boltstore"
	"newsdigest/subscribers"
)

// DataTokenTTL is the life of the links to one's own data, issued on the
// preferences page.
const DataTokenTTL = 24 * time.Hour

// subscriberFor verifies token for purpose p and loads its subscriber. ok
// is false for any bad token and for a subscriber who no longer exists.
func (s *Server) subscriberFor(p subscribers.Purpose, token string) (subscribers.Subscriber, subscribers.Claims, bool) {
	c, err := s.Signer.Verify(p, token, s.now())
	if err != nil {
		return subscribers.Subscriber{}, c, false
	}
	sub, err := s.Store.GetSubscriberByID(c.Subject)
	if err != nil {
		if !errors.Is(err, boltstore.ErrNotFound) {
			s.log().Error("web: load subscriber", "err", err)
		}
		return subscribers.Subscriber{}, c, false
	}
	return sub, c, true
}

// update applies fn to the subscriber that id (or, when id is empty,
// email) names and stores the result in one store transaction: fn sees
// the latest record, whatever changed since the page read it, and nothing
// can be written between its read and its write. fn runs inside that
// transaction: it must not call the Store. The change is reported to
// SubscriberChanged.
func (s *Server) update(id, email string, fn func(*subscribers.Subscriber) error) (subscribers.Subscriber, error) {
	var before subscribers.Subscriber
	wrap := func(sub *subscribers.Subscriber) error {
		before = *sub
		before.Lists = maps.Clone(sub.Lists) // fn changes the map in place
		return fn(sub)
	}
	var after subscribers.Subscriber
	var err error
	if id != "" {
		after, err = s.Store.UpdateSubscriberByID(id, wrap)
	} else {
		after, err = s.Store.UpdateSubscriber(email, wrap)
	}
	if err == nil {
		s.changed(before, after)
	}
	return after, err
}

// changed tells SubscriberChanged of a stored change.
func (s *Server) changed(before, after subscribers.Subscriber) {
	if s.SubscriberChanged != nil {
		s.SubscriberChanged(before, after)
	}
}

// confirmClaim is what a confirm token's list claim holds:
// "source|list,list|issued", issued being the Unix second of signing in
// base 36. Tokens signed before the issue time was added lack it; their
// issue time is their expiry less ConfirmTTL.
func (s *Server) confirmClaim(c subscribers.Claims) (source string, names []string, issued time.Time) {
	source, rest, _ := strings.Cut(c.List, "|")
	list, at, ok := strings.Cut(rest, "|")
	issued = c.Expires.Add(-s.ConfirmTTL)
	if ok {
		if u, err := strconv.ParseInt(at, 36, 64); err == nil {
			issued = time.Unix(u, 0)
		}
	}
	return source, strings.Split(list, ","), issued
}

// confirmList is the list claim of a confirm token issued at now.
func confirmList(source string, names []string, now time.Time) string {
	return source + "|" + strings.Join(names, ",") + "|" + strconv.FormatInt(now.Unix(), 36)
}

// confirmable says whether a confirm token issued at issued may confirm
// membership m: only a pending one, and only the sign-up the token was
// sent for, not an earlier one that ended (an unsubscribe, a bounce) and
// was followed by a new sign-up, which sends its own token. Memberships
// record their time to the nanosecond, tokens to the second.
func confirmable(m subscribers.Membership, issued time.Time) bool {
	return m.Status == subscribers.Pending && !issued.Before(m.Since.Truncate(time.Second))
}

// handleConfirm is GET /confirm/{token}, the double opt-in link. It moves
// the lists the token names from pending to confirmed, and only those
// pending since the token was sent; a list confirmed already is reported
// as subscribed and left alone. Any other membership (unsubscribed,
// bounced, complained, pending again through a later sign-up), and every
// list of a suppressed address, is left as it is, and the answer says the
// link no longer applies. Only GET acts: a HEAD, as mail link scanners
// send, gets the answer's status and changes nothing.
func (s *Server) handleConfirm(w http.ResponseWriter, r *http.Request) {
	sub, c, ok := s.subscriberFor(subscribers.PurposeConfirm, r.PathValue("token"))
	if !ok {
		s.badLink(w, r)
		return
	}
	source, names, issued := s.confirmClaim(c)
	now := s.now()
	var lists []subscribers.List
	for _, n := range names {
		l, err := s.Store.GetList(n)
		if err != nil {
			continue // the list was removed since
		}
		lists = append(lists, l)
	}
	if len(lists) == 0 {
		s.badLink(w, r)
		return
	}
	if r.Method != http.MethodGet {
		// A HEAD (the only other method routed here): the status of a
		// page, no change, no email.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return
	}
	_, suppressed, err := s.Store.Suppressed(sub.Email)
	if err != nil {
		s.internal(w, r, "confirm", err)
		return
	}
	ip := s.clientIP(r)
	var joined, member []subscribers.List // confirmed by this visit; confirmed now (joined or before)
	if !suppressed {
		sub, err = s.update(sub.ID, "", func(cur *subscribers.Subscriber) error {
			joined, member = joined[:0], member[:0]
			for _, l := range lists {
				m := cur.Lists[l.Name]
				switch {
				case m.Status == subscribers.Confirmed:
					member = append(member, l)
				case confirmable(m, issued):
					cur.SetStatus(l.Name, subscribers.Confirmed, now)
					joined = append(joined, l)
					member = append(member, l)
				}
			}
			if len(joined) > 0 {
				cur.Consent = subscribers.Consent{Time: now, IP: ip, Source: source}
			}
			return nil
		})
	}
	if s.updateFailed(w, r, "confirm", err) {
		return
	}
	if len(member) == 0 {
		s.log().Info("web: confirm link no longer applies: nothing changed", "subscriber", sub.ID, "lists", strings.Join(names, ","), "suppressed", suppressed)
		d := s.base("Link no longer applies")
		d.Heading = "This link no longer applies"
		d.Paragraphs = []string{"This confirmation link belongs to an earlier sign-up and changes nothing now. To subscribe again, use the sign-up form: a new confirmation link will be sent to you."}
		d.LinkURL = s.local("/subscribe")
		d.LinkText = "Subscribe again"
		s.render(w, "message", d)
		return
	}
	if len(joined) > 0 {
		s.welcomeOnce(sub, joined, r.PathValue("token"), now)
	}
	titles := make([]string, len(member))
	for i, l := range member {
		titles[i] = listTitle(l)
	}
	d := s.base("Subscription confirmed")
	d.Heading = "You are subscribed"
	d.Paragraphs = []string{"Thank you. You will receive " + joinAnd(titles) + " at the address you gave."}
	d.LinkURL = s.local("/preferences/" + s.Signer.Sign(subscribers.PurposePreferences, sub.ID, member[0].Name, time.Time{}))
	d.LinkText = "Choose when and what you receive"
	s.render(w, "message", d)
}

func joinAnd(ss []string) string {
	switch len(ss) {
	case 0:
		return ""
	case 1:
		return ss[0]
	}
	return strings.Join(ss[:len(ss)-1], ", ") + " and " + ss[len(ss)-1]
}

func (s *Server) handleUnsubscribePage(w http.ResponseWriter, r *http.Request) {
	sub, c, ok := s.subscriberFor(subscribers.PurposeUnsubscribe, r.PathValue("token"))
	if !ok {
		s.badLink(w, r)
		return
	}
	d := s.base("Unsubscribe")
	d.ListTitle = "all our newsletters"
	if c.List != "" {
		d.ListTitle = c.List
		if l, err := s.Store.GetList(c.List); err == nil {
			d.ListTitle = listTitle(l)
		}
	}
	d.PrefsURL = s.local("/preferences/" + s.Signer.Sign(subscribers.PurposePreferences, sub.ID, c.List, time.Time{}))
	s.render(w, "unsubscribe", d)
}

// handleUnsubscribe is the RFC 8058 one-click endpoint and the target of
// the page's button: it unsubscribes at once, with no cookie, login or
// redirect, whichever form encoding the body uses.
func (s *Server) handleUnsubscribe(w http.ResponseWriter, r *http.Request) {
	if err := readForm(w, r); errors.Is(err, errTooLarge) {
		s.fail(w, r, http.StatusRequestEntityTooLarge, "Too much data", "The request sent more data than an unsubscribe needs.")
		return
	}
	sub, c, ok := s.subscriberFor(subscribers.PurposeUnsubscribe, r.PathValue("token"))
	if !ok {
		s.badLink(w, r)
		return
	}
	now := s.now()
	changed := false
	sub, err := s.update(sub.ID, "", func(cur *subscribers.Subscriber) error {
		changed = false
		for name, m := range cur.Lists {
			if c.List != "" && name != c.List {
				continue
			}
			if m.Status == subscribers.Confirmed || m.Status == subscribers.Pending {
				cur.SetStatus(name, subscribers.Unsubscribed, now)
				changed = true
			}
		}
		return nil
	})
	if s.updateFailed(w, r, "unsubscribe", err) {
		return
	}
	if changed {
		s.log().Info("web: unsubscribed", "subscriber", sub.ID, "list", c.List)
		// The confirmation links sent before no longer confirm anything
		// (handleConfirm): whoever reads this address may sign up again
		// at once and get a new one, without waiting out MailInterval.
		if err := s.Store.Forget(addressKey(sub.Email)); err != nil {
			s.log().Error("web: clearing mail throttle", "err", err)
		}
	}
	title := "our newsletters"
	if c.List != "" {
		title = c.List
		if l, err := s.Store.GetList(c.List); err == nil {
			title = listTitle(l)
		}
	}
	d := s.base("Unsubscribed")
	d.Heading = "You are unsubscribed"
	d.Paragraphs = []string{"You will not receive " + title + " any more. It takes effect at once."}
	d.LinkURL = s.local("/preferences/" + s.Signer.Sign(subscribers.PurposePreferences, sub.ID, c.List, time.Time{}))
	d.LinkText = "Changed your mind? Manage your subscriptions"
	s.render(w, "message", d)
}

func (s *Server) handlePreferences(w http.ResponseWriter, r *http.Request) {
	sub, _, ok := s.subscriberFor(subscribers.PurposePreferences, r.PathValue("token"))
	if !ok {
		s.badLink(w, r)
		return
	}
	d, err := s.preferencesPage(sub)
	if err != nil {
		s.internal(w, r, "preferences", err)
		return
	}
	s.render(w, "preferences", d)
}

// Consent source recorded when a list is turned on from the preferences
// page.
const sourcePreferences = "preferences"

// lockedNote explains the lists the preferences page cannot turn on. It
// says no more than the page's holder may read in their data export.
const lockedNote = "Newsletters marked “not available” cannot be turned on from this page: mail to this address was stopped after a delivery failure or a complaint."

// locked says whether the preferences page must leave a list of status st
// off: any list not confirmed already, for a suppressed address (a hard
// bounce or a complaint: nothing is to be sent to it), and a list the
// person complained about even when the address is not suppressed (a
// complaint means do not mail). Unsubscribed, bounced (not suppressed),
// pending and never-joined lists may be turned on.
func locked(st subscribers.Status, suppressed bool) bool {
	return st != subscribers.Confirmed && (suppressed || st == subscribers.Complained)
}

// preferencesPage is the page for sub. A list it may not turn on (see
// locked) is shown unticked, its title marked, with lockedNote as the
// page's notice.
func (s *Server) preferencesPage(sub subscribers.Subscriber) (pageData, error) {
	d := s.base("Your preferences")
	lists, err := s.Store.Lists()
	if err != nil {
		return d, err
	}
	_, suppressed, err := s.Store.Suppressed(sub.Email)
	if err != nil {
		return d, err
	}
	var shown []string // the lists shown ticked
	for _, l := range lists {
		st := sub.StatusOn(l.Name)
		o := listOption{Name: l.Name, Title: listTitle(l), Checked: st == subscribers.Confirmed, Status: string(st)}
		if locked(st, suppressed) {
			o.Title += " (not available)"
			d.Notice = lockedNote
		}
		d.Lists = append(d.Lists, o)
		if st == subscribers.Confirmed {
			shown = append(shown, l.Name)
		}
	}
	d.Shown = strings.Join(shown, ",")
	d.Email = sub.Email
	d.Name = sub.Name
	d.Frequency = sub.Frequency
	if d.Frequency == "" {
		d.Frequency = subscribers.Daily
	}
	for _, t := range s.topicChoices(sub.Topics) {
		d.Topics = append(d.Topics, topicOption{Name: t, Checked: slices.Contains(sub.Topics, t)})
	}
	tz := sub.Timezone
	d.TZFromClient = tz == ""
	if tz == "" {
		tz = "UTC"
	}
	for _, z := range s.pages.timezones {
		d.Timezones = append(d.Timezones, zoneOption{Name: z, Selected: z == tz})
	}
	if !s.pages.zoneSet[tz] { // a zone set by an import that the list lacks
		d.Timezones = append([]zoneOption{{Name: tz, Selected: true}}, d.Timezones...)
	}
	d.Hours = append(d.Hours, hourOption{Value: -1, Label: "The newsletter's usual time", Selected: sub.SendHour < 0})
	for h := range 24 {
		d.Hours = append(d.Hours, hourOption{Value: h, Label: fmt.Sprintf("%02d:00", h), Selected: sub.SendHour == h})
	}
	d.DataURL = s.local("/data/" + s.Signer.Sign(subscribers.PurposeData, sub.ID, "", s.now().Add(DataTokenTTL)))
	return d, nil
}

// handleSavePreferences is POST /preferences/{token}. A box the person
// unticked unsubscribes (a confirmed or pending list). A box they ticked
// turns the list on at once, whatever left it (never joined, pending,
// unsubscribed, bounced), and records their consent as the confirm link
// does (time, client IP, source "preferences"), except a list locked for
// them: every list they are not confirmed on when the address is
// suppressed, and one they complained about. Those stay as they are and
// the page says so.
func (s *Server) handleSavePreferences(w http.ResponseWriter, r *http.Request) {
	if err := readForm(w, r); err != nil {
		if errors.Is(err, errTooLarge) {
			s.fail(w, r, http.StatusRequestEntityTooLarge, "Too much data", "The form sent more data than preferences need.")
			return
		}
		s.fail(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	sub, _, ok := s.subscriberFor(subscribers.PurposePreferences, r.PathValue("token"))
	if !ok {
		s.badLink(w, r)
		return
	}
	bad := func(msg string) {
		d, err := s.preferencesPage(sub)
		if err != nil {
			s.internal(w, r, "preferences", err)
			return
		}
		d.Status, d.Error = http.StatusBadRequest, msg
		s.render(w, "preferences", d)
	}
	f := r.PostForm
	freq := f.Get("frequency")
	if freq != subscribers.Daily && freq != subscribers.Weekly {
		bad("Please choose daily or weekly.")
		return
	}
	tz := f.Get("timezone")
	if tz != sub.Timezone || tz == "" {
		if !s.pages.zoneSet[tz] {
			bad("Please choose a time zone from the list.")
			return
		}
		if _, err := time.LoadLocation(tz); err != nil {
			bad("That time zone is not known on this server.")
			return
		}
	}
	hour, err := strconv.Atoi(f.Get("send_hour"))
	if err != nil || hour < -1 || hour > 23 {
		bad("Please choose an hour from the list.")
		return
	}
	offered := s.topicChoices(sub.Topics)
	var topics []string
	for _, t := range f["topics"] {
		if slices.Contains(offered, t) && !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	lists, err := s.Store.Lists()
	if err != nil {
		s.internal(w, r, "preferences", err)
		return
	}
	// The page says which lists it showed ticked ("shown"): then only the
	// boxes the person changed change a membership, and a list an admin
	// added, or a bounce or an unsubscribe elsewhere, since the page was
	// opened stays as it is. A post without it (an older page, a script)
	// sets every list to what its box says.
	_, delta := f["shown"]
	shown := make(map[string]bool)
	for _, v := range f["shown"] {
		for _, n := range strings.Split(v, ",") {
			shown[n] = true
		}
	}
	_, suppressed, err := s.Store.Suppressed(sub.Email)
	if err != nil {
		s.internal(w, r, "preferences", err)
		return
	}
	now := s.now()
	ip := s.clientIP(r)
	var refused []string // titles of the lists ticked but left off
	sub, err = s.update(sub.ID, "", func(cur *subscribers.Subscriber) error {
		refused = refused[:0]
		joined := false
		for _, l := range lists {
			want := slices.Contains(f["lists"], l.Name)
			if delta && want == shown[l.Name] {
				continue // left as the page showed it
			}
			st := cur.StatusOn(l.Name)
			switch {
			case want && st == subscribers.Confirmed:
			case want && locked(st, suppressed):
				refused = append(refused, listTitle(l))
			case want:
				// The person's own choice, made through the token that
				// came in an email to this address and posted from this
				// site: confirmation enough, recorded as the confirm
				// link records it.
				cur.SetStatus(l.Name, subscribers.Confirmed, now)
				joined = true
			case st == subscribers.Confirmed || st == subscribers.Pending:
				cur.SetStatus(l.Name, subscribers.Unsubscribed, now)
			}
		}
		if joined {
			cur.Consent = subscribers.Consent{Time: now, IP: ip, Source: sourcePreferences}
		}
		cur.Frequency, cur.Timezone, cur.SendHour, cur.Topics = freq, tz, hour, topics
		return nil
	})
	if s.updateFailed(w, r, "preferences", err) {
		return
	}
	d, err := s.preferencesPage(sub)
	if err != nil {
		s.internal(w, r, "preferences", err)
		return
	}
	if len(refused) > 0 {
		s.log().Info("web: preferences: lists left off: address suppressed or complained", "subscriber", sub.ID, "suppressed", suppressed)
		d.Notice = "Your preferences are saved."
		d.Error = "Not turned on: " + joinAnd(refused) + ". " + lockedNote
	} else if d.Notice != "" {
		d.Notice = "Your preferences are saved. " + d.Notice
	} else {
		d.Notice = "Your preferences are saved."
	}
	s.render(w, "preferences", d)
}

// topicChoices are the topics a subscriber may pick: the categories of
// the last 30 days' articles, plus those they chose before.
func (s *Server) topicChoices(current []string) []string {
	out := slices.Clone(s.topics.get(s))
	for _, t := range current {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// topicCache keeps the known categories for a few minutes.
type topicCache struct {
	mu     sync.Mutex
	at     time.Time
	topics []string
}

const maxTopics = 60

func (c *topicCache) get(s *Server) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := s.now()
	if !c.at.IsZero() && now.Sub(c.at) < 10*time.Minute && !now.Before(c.at) {
		return c.topics
	}
	arts, err := s.Store.Articles(now.Add(-30 * 24 * time.Hour))
	if err != nil {
		s.log().Error("web: topics", "err", err)
		return c.topics
	}
	count := map[string]int{}
	for _, a := range arts {
		for _, cat := range a.Categories {
			if cat = cleanName(cat); cat != "" && len(cat) <= 64 {
				count[cat]++
			}
		}
	}
	topics := make([]string, 0, len(count))
	for t := range count {
		topics = append(topics, t)
	}
	sort.Slice(topics, func(i, j int) bool {
		if count[topics[i]] != count[topics[j]] {
			return count[topics[i]] > count[topics[j]]
		}
		return topics[i] < topics[j]
	})
	if len(topics) > maxTopics {
		topics = topics[:maxTopics]
	}
	c.topics, c.at = topics, now
	return topics
}

func (s *Server) handleDataPage(w http.ResponseWriter, r *http.Request) {
	sub, _, ok := s.subscriberFor(subscribers.PurposeData, r.PathValue("token"))
	if !ok {
		s.badLink(w, r)
		return
	}
	tok := r.PathValue("token")
	d := s.base("Your data")
	d.Email = sub.Email
	d.ExportURL = s.local("/data/" + tok + "/export")
	d.DeleteURL = s.local("/data/" + tok + "/delete")
	s.render(w, "data", d)
}

// dataExport is everything stored about one subscriber.
type dataExport struct {
	Exported   time.Time              `json:"exported"`
	Subscriber subscribers.Subscriber `json:"subscriber"`
	Suppressed string                 `json:"suppressed,omitempty"` // why mail to the address is stopped
}

func (s *Server) handleDataExport(w http.ResponseWriter, r *http.Request) {
	sub, _, ok := s.subscriberFor(subscribers.PurposeData, r.PathValue("token"))
	if !ok {
		s.badLink(w, r)
		return
	}
	out := dataExport{Exported: s.now().UTC(), Subscriber: sub}
	if reason, sup, err := s.Store.Suppressed(sub.Email); err == nil && sup {
		out.Suppressed = reason
	}
	w.Header().Set("Content-Disposition", `attachment; filename="my-newsletter-data.json"`)
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		s.internal(w, r, "export", err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}

func (s *Server) handleDataDelete(w http.ResponseWriter, r *http.Request) {
	if err := readForm(w, r); err != nil {
		s.fail(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	sub, _, ok := s.subscriberFor(subscribers.PurposeData, r.PathValue("token"))
	if !ok {
		s.badLink(w, r)
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		tok := r.PathValue("token")
		d := s.base("Your data")
		d.Status, d.Error, d.Email = http.StatusBadRequest, "Tick the box to confirm that everything should be deleted.", sub.Email
		d.ExportURL = s.local("/data/" + tok + "/export")
		d.DeleteURL = s.local("/data/" + tok + "/delete")
		s.render(w, "data", d)
		return
	}
	if err := s.Store.DeleteSubscriber(sub.Email); err != nil && !errors.Is(err, boltstore.ErrNotFound) {
		s.internal(w, r, "delete", err)
		return
	}
	if err := s.Store.Forget(addressKey(sub.Email)); err != nil {
		s.log().Error("web: forget throttle", "err", err)
	}
	s.log().Info("web: subscriber deleted their data", "subscriber", sub.ID)
	s.message(w, http.StatusOK, "Your data is deleted",
		"Everything we stored about you is gone and you will get no more emails from us.")
}

// updateFailed answers a failed update of the subscriber a token named,
// and says whether it did: a subscriber deleted since the token was
// checked gets the bad-link page, any other error the internal one.
func (s *Server) updateFailed(w http.ResponseWriter, r *http.Request, op string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, boltstore.ErrNotFound):
		s.badLink(w, r)
	default:
		s.internal(w, r, op, err)
	}
	return true
}
