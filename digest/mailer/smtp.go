package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// TLS modes of Config.TLS.
const (
	TLSNone     = "none"     // plain SMTP; credentials only to a loopback host
	TLSStartTLS = "starttls" // STARTTLS required
	TLSImplicit = "tls"      // implicit TLS (SMTPS)
)

// DefaultTimeout bounds dialing and each SMTP exchange when Config.Timeout
// is zero.
const DefaultTimeout = 30 * time.Second

// Config says how to reach the SMTP relay. Keys are named after the
// [smtp] section of the configuration file.
type Config struct {
	Host     string
	Port     int // 0 = 25 for "none", 587 for "starttls", 465 for "tls"
	Username string
	Password string
	TLS      string        // "none" | "starttls" | "tls"; empty means "starttls"
	Timeout  time.Duration // 0 = DefaultTimeout
	HELO     string        // EHLO name; empty = this host's name

	// TLSConfig overrides the TLS settings (e.g. a private CA). nil means
	// the system roots and ServerName = Host.
	TLSConfig *tls.Config
}

// Validate checks c and names the bad key.
func (c Config) Validate() error {
	switch {
	case c.Host == "":
		return errors.New("smtp.host: required")
	case strings.ContainsFunc(c.Host, isSpaceOrControl) || strings.Contains(c.Host, "/"):
		return fmt.Errorf("smtp.host: %q is not a host name", c.Host)
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("smtp.port: %d is not between 1 and 65535", c.Port)
	case c.Timeout < 0:
		return fmt.Errorf("smtp.timeout: %s is negative", c.Timeout)
	case strings.ContainsFunc(c.HELO, isSpaceOrControl):
		return fmt.Errorf("smtp.helo: %q is not a host name", c.HELO)
	case strings.ContainsFunc(c.Username, isControl) || strings.ContainsFunc(c.Password, isControl):
		return errors.New("smtp.username/smtp.password: control characters are not allowed")
	}
	switch c.tlsMode() {
	case TLSNone:
		if (c.Username != "" || c.Password != "") && !isLoopback(c.Host) {
			return fmt.Errorf("smtp.tls: \"none\" would send the password in clear to %s; use \"starttls\" or \"tls\"", c.Host)
		}
	case TLSStartTLS, TLSImplicit:
	default:
		return fmt.Errorf("smtp.tls: %q: want \"none\", \"starttls\" or \"tls\"", c.TLS)
	}
	if c.Password != "" && c.Username == "" {
		return errors.New("smtp.username: required when smtp.password is set")
	}
	return nil
}

func (c Config) tlsMode() string {
	if c.TLS == "" {
		return TLSStartTLS
	}
	return strings.ToLower(c.TLS)
}

func (c Config) port() int {
	if c.Port != 0 {
		return c.Port
	}
	switch c.tlsMode() {
	case TLSNone:
		return 25
	case TLSImplicit:
		return 465
	}
	return 587
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }
func isControl(r rune) bool        { return r < ' ' || r == 0x7f }

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Conn is one SMTP session reused across messages. It is safe for
// concurrent use, but sends one message at a time: open several Conns
// for parallel sending.
type Conn struct {
	cfg    Config
	client *gomail.Client

	mu         sync.Mutex
	session    *smtp.Client // nil when broken or closed
	closed     bool
	pipelining *bool     // whether the session's server offers PIPELINING; nil = not asked yet
	data       []byte    // SendRaw's DATA content, reused
	pre        *Envelope // transaction started by SendRawThen, replies not read yet
	begun      *Envelope // transaction whose content BeginRaw sent, without its terminator
}

// Dial opens an SMTP session as c says: TLS mandatory for "starttls" and
// "tls", none for "none"; authentication (the best mechanism the server
// offers, PLAIN or LOGIN over TLS) only when a username is set.
func Dial(ctx context.Context, c Config) (*Conn, error) {
	return dialWith(ctx, c)
}

// dialWith is Dial with further go-mail options (tests: a dialer that
// counts the connection's writes).
func dialWith(ctx context.Context, c Config, extra ...gomail.Option) (*Conn, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("mailer: %w", err)
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	opts := []gomail.Option{
		gomail.WithPort(c.port()),
		gomail.WithTimeout(timeout),
		// One round trip per message: no NOOP before each Send (a dead
		// session shows at MAIL FROM and is redialled) and no RSET after
		// a successful DATA (the next MAIL starts a new transaction).
		gomail.WithoutNoop(),
		gomail.WithoutRset(),
	}
	switch c.tlsMode() {
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if c.TLSConfig != nil {
		opts = append(opts, gomail.WithTLSConfig(c.TLSConfig))
	}
	if c.HELO != "" {
		opts = append(opts, gomail.WithHELO(c.HELO))
	}
	if c.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(c.Username), gomail.WithPassword(c.Password))
	}
	client, err := gomail.NewClient(c.Host, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("mailer: smtp client for %s: %w", c.Host, err)
	}
	conn := &Conn{cfg: c, client: client}
	if err := conn.dial(ctx); err != nil {
		return nil, err
	}
	return conn, nil
}

func (c *Conn) dial(ctx context.Context) error {
	s, err := c.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return &SendError{Temporary: true, Reply: fmt.Sprintf("dial %s:%d: %v", c.cfg.Host, c.cfg.port(), err), Err: err}
	}
	c.session, c.pipelining = s, nil
	return nil
}

// SendError is the outcome of a message the server did not accept, or
// accepted and then reported an error for (Delivered).
type SendError struct {
	Index     int    // position of the message in the Send call
	MessageID string // the message's Message-ID, with <>
	Temporary bool   // worth retrying: a 4xx reply, or no reply at all (connection dropped or refused)
	Code      int    // SMTP reply code; 0 when there was no reply
	Enhanced  string // enhanced status code such as "5.1.1", when the server gives one
	Reply     string // the server's reply, or what went wrong
	Delivered bool   // the server accepted the message before the error: do not send it again
	Err       error  // the underlying error
}

// Error returns the reply with its context.
func (e *SendError) Error() string {
	var b strings.Builder
	b.WriteString("mailer: send")
	if e.MessageID != "" {
		b.WriteString(" " + e.MessageID)
	}
	if e.Delivered {
		b.WriteString(" (delivered)")
	}
	b.WriteString(": ")
	b.WriteString(e.Reply)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *SendError) Unwrap() error { return e.Err }

// Send sends msgs one after another on the held session. It returns nil if
// the server accepted them all; otherwise a *SendError for the one failed
// message, or errors.Join of several (use errors.As, or msg.IsDelivered).
//
// A session found broken is redialled once per call: before the first
// message when an earlier Send broke it, or when the server has dropped an
// idle session (the message had not reached it; it is sent again on the
// new session). A connection lost during a message is reported as a
// Temporary SendError and the session is redialled on the next Send.
// ctx is checked between messages and bounds dialling.
func (c *Conn) Send(ctx context.Context, msgs ...*gomail.Msg) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("mailer: send on a closed connection")
	}
	if c.pre != nil || c.begun != nil {
		// A transaction SendRawThen or BeginRaw left open: go-mail's
		// commands must not land in it.
		c.drop()
	}
	redialled := false
	var errs []error
	for i, m := range msgs {
		if m == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, &SendError{Index: i, MessageID: m.GetMessageID(), Temporary: true, Reply: "not sent: " + err.Error(), Err: err})
			continue
		}
		for {
			if c.session == nil {
				if redialled {
					errs = append(errs, &SendError{Index: i, MessageID: m.GetMessageID(), Temporary: true, Reply: "not sent: the SMTP session is down"})
					break
				}
				redialled = true
				if err := c.dial(ctx); err != nil {
					se := err.(*SendError)
					se.Index, se.MessageID = i, m.GetMessageID()
					errs = append(errs, se)
					break
				}
			}
			err := c.client.SendWithSMTPClient(c.session, m)
			if err == nil {
				break
			}
			se := classify(err, m)
			se.Index = i
			if se.Code == 0 && !se.Delivered && se.Temporary {
				// No reply: the session is gone.
				c.drop()
				if early(err) && !redialled {
					continue // nothing reached the server: try once on a fresh session
				}
			}
			errs = append(errs, se)
			break
		}
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}

// early reports whether err happened before the server could have received
// the message: at the connection check or at MAIL FROM.
func early(err error) bool {
	var ge *gomail.SendError
	return errors.As(err, &ge) && (ge.Reason == gomail.ErrConnCheck || ge.Reason == gomail.ErrSMTPMailFrom)
}

// classify maps go-mail's error to a SendError.
func classify(err error, m *gomail.Msg) *SendError {
	se := &SendError{MessageID: m.GetMessageID(), Delivered: m.IsDelivered(), Err: err}
	var ge *gomail.SendError
	if !errors.As(err, &ge) {
		se.Temporary, se.Reply = true, err.Error()
		return se
	}
	se.Code = ge.ErrorCode()
	se.Enhanced = ge.EnhancedStatusCode()
	se.Reply = replyText(ge)
	switch {
	case se.Code >= 400 && se.Code < 500:
		se.Temporary = true
	case se.Code >= 500:
		se.Temporary = false
	case ge.Reason == gomail.ErrGetSender || ge.Reason == gomail.ErrGetRcpts || ge.Reason == gomail.ErrNoUnencoded:
		se.Temporary = false // the message itself is wrong
	default:
		se.Temporary = true // no reply: connection dropped
	}
	return se
}

// replyText extracts the server's reply ("550 5.1.1 No such user") from
// go-mail's error text, which wraps it in context and may quote it.
func replyText(ge *gomail.SendError) string {
	s := ge.Error()
	code := ge.ErrorCode()
	if code == 0 {
		return s
	}
	prefix := strconv.Itoa(code) + " "
	i := strings.Index(s, prefix)
	if i < 0 {
		return s
	}
	r := s[i+len(prefix):]
	if q, err := strconv.QuotedPrefix(r); err == nil {
		if u, err := strconv.Unquote(q); err == nil {
			r = u
		}
	} else if j := strings.Index(r, ", affected "); j >= 0 {
		r = r[:j]
	}
	return prefix + strings.Join(strings.Fields(r), " ")
}

func (c *Conn) drop() {
	c.pre, c.begun = nil, nil
	if c.session != nil {
		_ = c.session.Close()
		c.session = nil
	}
}

// Close ends the session with QUIT (or just closes a broken one).
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.session == nil {
		return nil
	}
	if c.begun != nil {
		// Content sent without its terminator: only ending the session
		// keeps the server from taking anything.
		c.drop()
		return nil
	}
	if pre := c.pre; pre != nil {
		c.pre = nil
		_ = c.session.UpdateDeadline(c.timeout())
		if se := c.settlePre(c.session.Text, pre); se != nil {
			// The session ended: the server drops the unfinished
			// transaction, nothing was sent in it.
			c.drop()
			return nil
		}
	}
	err := c.client.CloseWithSMTPClient(c.session)
	_ = c.session.Close()
	c.session = nil
	if err != nil {
		return fmt.Errorf("mailer: %w", err)
	}
	return nil
}
