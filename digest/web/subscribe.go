package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"newsdigest/digest/boltstore"
	"newsdigest/digest/mailer"
	"newsdigest/digest/render"
	"newsdigest/subscribers"
)

// signup is one sign-up request, from the form or JSON.
type signup struct {
	Email    string   `json:"email"`
	Name     string   `json:"name"`
	Lists    []string `json:"lists"`
	Website  string   `json:"website"` // the honeypot: people leave it empty
	fromJSON bool
}

// Consent sources recorded at confirmation.
const (
	sourceForm = "form"
	sourceJSON = "api"
)

var errTooLarge = errors.New("request body too large")

func (s *Server) handleSubscribeForm(w http.ResponseWriter, r *http.Request) {
	d := s.base("Subscribe")
	lists, err := s.Store.Lists()
	if err != nil {
		s.internal(w, r, "lists", err)
		return
	}
	want := r.URL.Query()["list"]
	d.Lists, d.OneList = s.listOptions(lists, want)
	if len(lists) == 0 {
		s.message(w, http.StatusServiceUnavailable, "Not open yet", "There is no newsletter to subscribe to yet.")
		return
	}
	s.render(w, "subscribe", d)
}

func (s *Server) listOptions(lists []subscribers.List, checked []string) ([]listOption, string) {
	if len(lists) == 1 {
		return nil, lists[0].Name
	}
	out := make([]listOption, len(lists))
	for i, l := range lists {
		out[i] = listOption{Name: l.Name, Title: listTitle(l), Checked: slices.Contains(checked, l.Name)}
	}
	return out, ""
}

func listTitle(l subscribers.List) string {
	if t := strings.TrimSpace(l.Title); t != "" {
		return t
	}
	return l.Name
}

// readBody limits the body and parses a form (either encoding) or JSON.
func readForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var err error
	if mt == "multipart/form-data" {
		err = r.ParseMultipartForm(MaxFormBytes)
	} else {
		err = r.ParseForm()
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || (err != nil && strings.Contains(err.Error(), "too large")) {
		return errTooLarge
	}
	return err
}

func (s *Server) readSignup(w http.ResponseWriter, r *http.Request) (signup, error) {
	var in signup
	if isJSONType(r.Header.Get("Content-Type")) {
		in.fromJSON = true
		r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
		dec := json.NewDecoder(r.Body)
		if err := dec.Decode(&in); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return in, errTooLarge
			}
			return in, fmt.Errorf("body is not a JSON object with email, name and lists: %w", err)
		}
		return in, nil
	}
	if err := readForm(w, r); err != nil {
		return in, err
	}
	in.Email, in.Name, in.Website = r.PostFormValue("email"), r.PostFormValue("name"), r.PostFormValue("website")
	in.Lists = r.PostForm["lists"]
	if len(in.Lists) == 0 {
		in.Lists = r.PostForm["list"]
	}
	return in, nil
}

func (s *Server) handlePreflight(w http.ResponseWriter, r *http.Request) {
	if !s.corsAllow(w, r) {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	w.Header().Set("Access-Control-Allow-Methods", "POST")
	w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
	w.Header().Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// corsAllow sets the CORS answer for a trusted origin and reports whether
// the request's origin is one.
func (s *Server) corsAllow(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Add("Vary", "Origin")
	o := r.Header.Get("Origin")
	if o == "" || !slices.Contains(s.TrustedOrigins, o) {
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", o)
	return true
}

func (s *Server) handleSubscribe(w http.ResponseWriter, r *http.Request) {
	s.corsAllow(w, r)
	now := s.now()
	in, err := s.readSignup(w, r)
	switch {
	case errors.Is(err, errTooLarge):
		s.fail(w, r, http.StatusRequestEntityTooLarge, "Too much data", "The form sent more data than a sign-up needs.")
		return
	case err != nil:
		s.fail(w, r, http.StatusBadRequest, "Bad request", "The sign-up could not be read: "+err.Error())
		return
	}
	if !s.limiter.allow(s.clientIP(r), now) {
		w.Header().Set("Retry-After", "60")
		s.fail(w, r, http.StatusTooManyRequests, "Too many requests", "Too many sign-ups from your network. Please wait a minute and try again.")
		return
	}
	if strings.TrimSpace(in.Website) != "" {
		s.log().Info("web: sign-up dropped: honeypot filled", "ip", s.clientIP(r))
		s.accepted(w, r)
		return
	}
	allLists, err := s.Store.Lists()
	if err != nil {
		s.internal(w, r, "lists", err)
		return
	}
	email, err := subscribers.NormalizeEmail(in.Email)
	if err != nil {
		s.signupError(w, r, in, allLists, "Please enter a valid email address.")
		return
	}
	lists, msg := pickLists(allLists, in.Lists)
	if msg != "" {
		s.signupError(w, r, in, allLists, msg)
		return
	}
	source := sourceForm
	if in.fromJSON {
		source = sourceJSON
	}
	if err := s.signUp(email, cleanName(in.Name), lists, source, now); err != nil {
		s.internal(w, r, "sign-up", err)
		return
	}
	s.accepted(w, r)
}

func (s *Server) signupError(w http.ResponseWriter, r *http.Request, in signup, lists []subscribers.List, msg string) {
	if wantsJSON(r) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": msg})
		return
	}
	d := s.base("Subscribe")
	d.Status, d.Error = http.StatusBadRequest, msg
	d.Email, d.Name = in.Email, in.Name
	d.Lists, d.OneList = s.listOptions(lists, in.Lists)
	s.render(w, "subscribe", d)
}

// accepted is the one answer to every sign-up that was read: it never says
// whether the address was known, already subscribed, throttled or a bot.
func (s *Server) accepted(w http.ResponseWriter, r *http.Request) {
	const text = "If this address can receive our newsletter, a message with a confirmation link is on its way to it. Open that link to start your subscription."
	if wantsJSON(r) {
		writeJSON(w, http.StatusAccepted, map[string]any{"ok": true, "message": text})
		return
	}
	s.message(w, http.StatusOK, "Check your inbox", text,
		"Nothing there after a few minutes? Look in your spam folder. Only one confirmation message is sent per address per day.")
}

// pickLists resolves the requested list names; no name means the only list.
func pickLists(all []subscribers.List, names []string) ([]subscribers.List, string) {
	if len(names) == 0 {
		if len(all) == 1 {
			return all, ""
		}
		return nil, "Please choose at least one newsletter."
	}
	if len(names) > MaxListsPerRequest {
		return nil, "Too many newsletters in one request."
	}
	var out []subscribers.List
	for _, n := range names {
		i := slices.IndexFunc(all, func(l subscribers.List) bool { return l.Name == n })
		if i < 0 {
			return nil, "There is no newsletter by that name."
		}
		if !slices.ContainsFunc(out, func(l subscribers.List) bool { return l.Name == n }) {
			out = append(out, all[i])
		}
	}
	return out, ""
}

// cleanName makes a submitted name one line of printable text, at most
// MaxNameRunes long. It is stored, shown escaped on pages and in digests,
// and never put into the confirmation email.
func cleanName(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
	}
	var b strings.Builder
	space, n := false, 0
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			space = b.Len() > 0
			continue
		}
		if n >= MaxNameRunes {
			break
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

// signUp records a pending subscription to lists and sends the
// confirmation email, unless the address is confirmed on all of them
// already, suppressed, or was sent one within MailInterval. A list the
// address left (unsubscribed, or bounced or complained while the address
// is not suppressed) becomes pending again from now: only a confirmation
// link sent from now on confirms it (see handleConfirm).
func (s *Server) signUp(email, name string, lists []subscribers.List, source string, now time.Time) error {
	_, suppressed, err := s.Store.Suppressed(email)
	if err != nil {
		return err
	}
	var confirm []subscribers.List
	// pend marks the lists to confirm pending, in the transaction that
	// reads the record, so that a change made meanwhile (an admin adding
	// a list, a second sign-up) is kept.
	pend := func(cur *subscribers.Subscriber) error {
		confirm = confirm[:0]
		for _, l := range lists {
			switch cur.StatusOn(l.Name) {
			case subscribers.Confirmed:
				continue
			case "", subscribers.Unsubscribed:
				cur.SetStatus(l.Name, subscribers.Pending, now)
			case subscribers.Bounced, subscribers.Complained:
				if !suppressed { // else it stays as the bounce left it: no email goes out
					cur.SetStatus(l.Name, subscribers.Pending, now)
				}
			}
			confirm = append(confirm, l)
		}
		return nil
	}
	var sub subscribers.Subscriber
	for range 3 { // a new address stored by someone else meanwhile: update it
		sub, err = s.update("", email, pend)
		if !errors.Is(err, boltstore.ErrNotFound) {
			break
		}
		sub = subscribers.Subscriber{Email: email, Name: name, SendHour: -1, Frequency: subscribers.Daily}
		pend(&sub)
		if err = s.Store.AddSubscriber(sub); errors.Is(err, boltstore.ErrExists) {
			continue
		}
		if err != nil {
			return err
		}
		if sub, err = s.Store.GetSubscriber(email); err != nil { // its ID
			return err
		}
		s.changed(subscribers.Subscriber{}, sub)
		break
	}
	if err != nil {
		return err
	}
	if len(confirm) == 0 {
		return nil
	}
	if suppressed {
		s.log().Info("web: no confirmation email: address suppressed", "subscriber", sub.ID)
		return nil
	}
	ok, err := s.Store.Allow(addressKey(email), now, s.MailInterval)
	if err != nil {
		return err
	}
	if !ok {
		s.log().Info("web: no confirmation email: one was sent to this address recently", "subscriber", sub.ID)
		return nil
	}
	msg, err := s.confirmation(sub, confirm, source, now)
	if err != nil {
		s.Store.Forget(addressKey(email))
		return err
	}
	s.sendAsync(sub, msg, "confirmation")
	return nil
}

// confirmation builds the double opt-in email for sub and lists.
func (s *Server) confirmation(sub subscribers.Subscriber, lists []subscribers.List, source string, now time.Time) (*mailMsg, error) {
	if s.System == nil {
		return nil, errors.New("web: no system email renderer")
	}
	names := make([]string, len(lists))
	titles := make([]string, len(lists))
	for i, l := range lists {
		names[i], titles[i] = l.Name, listTitle(l)
	}
	expires := now.Add(s.ConfirmTTL)
	token := s.Signer.Sign(subscribers.PurposeConfirm, sub.ID, confirmList(source, names, now), expires)
	sm, err := s.System.Confirmation(render.Confirmation{
		Brand: s.Brand, ListTitles: titles, ConfirmURL: s.url("/confirm/" + token), Expires: expires,
	}, now)
	if err != nil {
		return nil, err
	}
	from, replyTo := s.From, ""
	if from == "" {
		from, replyTo = lists[0].From, lists[0].ReplyTo
	}
	fa, err := subscribers.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("web: confirmation sender %q: %w", from, err)
	}
	m, err := mailer.Build(mailer.Message{
		From: from, ReplyTo: replyTo, To: sub.Email, Subject: sm.Subject, Date: now,
		MessageID:  mailer.NewMessageID(fa.Address[strings.LastIndexByte(fa.Address, '@')+1:]),
		ReturnPath: s.returnPath(sub),
		Text:       sm.Text, HTML: sm.HTML,
	})
	if err != nil {
		return nil, err
	}
	return &mailMsg{msg: m, key: addressKey(sub.Email)}, nil
}

// welcomeOnce sends the welcome email for lists, which sub has just
// confirmed by opening the link carrying token. The caller saw the
// pending→confirmed transition; the throttle record of the token makes
// sure that two visits racing through that check send one email, not two.
// A failure is logged: the subscription stands either way.
func (s *Server) welcomeOnce(sub subscribers.Subscriber, lists []subscribers.List, token string, now time.Time) {
	if _, suppressed, err := s.Store.Suppressed(sub.Email); err != nil || suppressed {
		if err != nil {
			s.log().Error("web: welcome email: suppression list", "subscriber", sub.ID, "err", err)
		} else {
			s.log().Info("web: no welcome email: address suppressed", "subscriber", sub.ID)
		}
		return
	}
	sum := sha256.Sum256([]byte("welcome\x00" + token))
	ok, err := s.Store.Allow("welcome:"+hex.EncodeToString(sum[:16]), now, s.ConfirmTTL)
	if err != nil {
		s.log().Error("web: welcome email: throttle", "subscriber", sub.ID, "err", err)
		return
	}
	if !ok {
		return
	}
	msg, err := s.welcome(sub, lists, now)
	if err != nil {
		s.log().Error("web: welcome email not sent", "subscriber", sub.ID, "err", err)
		return
	}
	s.sendAsync(sub, msg, "welcome")
}

// welcome builds the email that greets sub on lists: which lists, how
// often and when, the archive, and, as in every list email, a visible
// unsubscribe and preferences link and the List-Unsubscribe headers. It
// comes from the first list's sender, the address the digests will come
// from. Like the confirmation, it holds nothing the person typed.
func (s *Server) welcome(sub subscribers.Subscriber, lists []subscribers.List, now time.Time) (*mailMsg, error) {
	if s.System == nil {
		return nil, errors.New("web: no system email renderer")
	}
	titles := make([]string, len(lists))
	for i, l := range lists {
		titles[i] = listTitle(l)
	}
	list := "" // one token for all the lists joined at once
	if len(lists) == 1 {
		list = lists[0].Name
	}
	unsubTok := s.Signer.Sign(subscribers.PurposeUnsubscribe, sub.ID, list, time.Time{})
	at, zone := sendTime(sub, lists)
	sm, err := s.System.Welcome(render.Welcome{
		Brand: s.Brand, ListTitles: titles, Weekly: sub.Frequency == subscribers.Weekly,
		SendTime: at, TimeZone: zone, ArchiveURL: s.url("/archive"),
		PreferencesURL: s.url("/preferences/" + s.Signer.Sign(subscribers.PurposePreferences, sub.ID, list, time.Time{})),
		UnsubscribeURL: s.url("/unsubscribe/" + unsubTok),
	})
	if err != nil {
		return nil, err
	}
	l := lists[0]
	fa, err := subscribers.ParseAddress(l.From)
	if err != nil {
		return nil, fmt.Errorf("web: welcome sender %q of list %s: %w", l.From, l.Name, err)
	}
	domain := fa.Address[strings.LastIndexByte(fa.Address, '@')+1:]
	mailto := s.UnsubscribeMailto
	if mailto == "" {
		mailto = fa.Address
	}
	m, err := mailer.Build(mailer.Message{
		From: l.From, ReplyTo: l.ReplyTo, To: sub.Email, Subject: sm.Subject, Date: now,
		MessageID:         mailer.NewMessageID(domain),
		ListID:            strings.Join(strings.Fields(listTitle(l)), " ") + " <" + l.Name + "." + domain + ">",
		UnsubscribeURL:    s.url("/unsubscribe/" + unsubTok),
		UnsubscribeMailto: mailto + "?subject=" + url.PathEscape("unsubscribe "+unsubTok),
		FeedbackID:        "welcome:" + l.Name + ":newsdigest",
		ReturnPath:        s.returnPath(sub),
		Text:              sm.Text, HTML: sm.HTML,
	})
	if err != nil {
		return nil, err
	}
	return &mailMsg{msg: m}, nil
}

// returnPath is the envelope sender (MAIL FROM) of a confirmation or
// welcome email to sub: a VERP address bounces+TOKEN@bounce-domain on
// BounceAddress, the bare BounceAddress for a subscriber whose ID cannot
// be signed (one given by an import), or "" (the From) without a
// BounceAddress.
//
// The token names the subscriber but no list and no edition (an empty
// list name, the slot of Unix time 0), as these emails belong to none:
// the bounce processor ties a bounce or complaint of one to the
// subscriber, records it without a list or edition and, as for any
// report whose list it cannot tell, marks every list they are confirmed
// or pending on. So a confirmation that hard-bounces suppresses the
// address (no further confirmation goes to it) and marks its pending
// lists bounced; and the bounce listener, which trusts only reports with
// a valid token, no longer drops these bounces.
func (s *Server) returnPath(sub subscribers.Subscriber) string {
	if s.BounceAddress == "" {
		return ""
	}
	if tok, ok := s.Signer.SignBounce(sub.ID, "", time.Unix(0, 0)); ok {
		if addr, err := subscribers.VERPAddress(s.BounceAddress, tok); err == nil {
			return addr
		}
	}
	return s.BounceAddress
}

// sendTime is the time of day (and its zone) the lists' editions reach
// sub, when it is known: the subscriber's own hour, else the time of a
// daily cron spec with CRON_TZ shared by every list. Empty otherwise.
func sendTime(sub subscribers.Subscriber, lists []subscribers.List) (at, zone string) {
	if sub.SendHour >= 0 && sub.SendHour <= 23 {
		zone = sub.Timezone
		if zone == "" {
			zone = "UTC"
		}
		return fmt.Sprintf("%02d:00", sub.SendHour), zone
	}
	for i, l := range lists {
		a, z := cronTime(l.Schedule)
		if a == "" || (i > 0 && (a != at || z != zone)) {
			return "", ""
		}
		at, zone = a, z
	}
	return at, zone
}

// cronTime reads "CRON_TZ=Europe/Paris 30 7 * * *" as "07:30" in
// "Europe/Paris". Any other spec, or one without a zone (it would run in
// the server's zone, which means nothing to a reader), gives "".
func cronTime(spec string) (at, zone string) {
	f := strings.Fields(spec)
	if len(f) != 6 {
		return "", ""
	}
	z, ok := strings.CutPrefix(f[0], "CRON_TZ=")
	if !ok {
		z, ok = strings.CutPrefix(f[0], "TZ=")
	}
	if _, err := time.LoadLocation(z); !ok || z == "" || err != nil {
		return "", ""
	}
	minute, err1 := strconv.Atoi(f[1])
	hour, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || minute < 0 || minute > 59 || hour < 0 || hour > 23 || f[3] != "*" || f[4] != "*" {
		return "", ""
	}
	return fmt.Sprintf("%02d:%02d", hour, minute), z
}

// sendAsync sends in the background, so that the answer to the form or
// the confirm link takes the same time whatever happens to the address.
// what names the email in logs.
func (s *Server) sendAsync(sub subscribers.Subscriber, m *mailMsg, what string) {
	if s.Send == nil {
		s.log().Warn("web: no SMTP sender configured: "+what+" email not sent", "subscriber", sub.ID)
		return
	}
	s.mailWG.Add(1)
	go func() {
		defer s.mailWG.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := s.Send(ctx, m.msg); err != nil {
			s.log().Error("web: sending "+what+" email", "subscriber", sub.ID, "err", err)
			if m.key == "" {
				return
			}
			if ferr := s.Store.Forget(m.key); ferr != nil {
				s.log().Error("web: clearing mail throttle", "err", ferr)
			}
			return
		}
		s.log().Info("web: "+what+" email sent", "subscriber", sub.ID)
	}()
}

// internal logs an unexpected error and answers 500 without details.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log().Error("web: "+what, "path", r.URL.Path, "err", err)
	s.fail(w, r, http.StatusInternalServerError, "Something went wrong", "Please try again in a few minutes.")
}
