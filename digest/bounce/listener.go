package bounce

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// Listener receives bounce mail over SMTP (the MX of the bounce domain, or
// a relay forwarding to it) and hands each message to a Processor. A
// message that is no usable report is accepted, saved in KeepDir and
// counted; a storage failure answers 451 so that the sender tries again.
// It offers no AUTH and no relaying: every recipient is taken as a bounce
// address.
type Listener struct {
	Processor *Processor
	// KeepDir is where messages that are not usable reports are saved
	// (created on first use); "" keeps nothing.
	KeepDir string
	Log     *slog.Logger

	kept     atomic.Int64
	received atomic.Int64
	srv      *smtp.Server
	ln       net.Listener
	done     chan struct{}
}

// Listen binds addr ("127.0.0.1:2525", ":25") and serves until Close or
// Shutdown.
func (l *Listener) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("bounce: listen %s: %w", addr, err)
	}
	srv := smtp.NewServer(backend{l})
	srv.Domain = "newsdigest-bounces"
	srv.MaxMessageBytes = MaxMessageBytes
	srv.MaxRecipients = 16
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l.srv, l.ln, l.done = srv, ln, make(chan struct{})
	go func() {
		defer close(l.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			l.logger().Error("bounce listener stopped", "err", err)
		}
	}()
	return nil
}

// Addr is the address the listener is bound to.
func (l *Listener) Addr() string { return l.ln.Addr().String() }

// Kept is the number of messages kept aside so far; Received the number
// of messages taken.
func (l *Listener) Kept() int64     { return l.kept.Load() }
func (l *Listener) Received() int64 { return l.received.Load() }

// Shutdown stops taking connections and waits for open sessions to end,
// until ctx is done (then it drops them).
func (l *Listener) Shutdown(ctx context.Context) error {
	if l.srv == nil {
		return nil
	}
	err := l.srv.Shutdown(ctx)
	if err != nil {
		l.srv.Close()
	}
	<-l.done
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the listener at once.
func (l *Listener) Close() error {
	if l.srv == nil {
		return nil
	}
	err := l.srv.Close()
	<-l.done
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

func (l *Listener) logger() *slog.Logger {
	if l.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.Log
}

// handle processes one message.
func (l *Listener) handle(data []byte, to []string) error {
	l.received.Add(1)
	outs, err := l.Processor.Process(bytes.NewReader(data), "smtp", to...)
	if err != nil {
		l.logger().Error("bounce processing failed; asking the sender to retry", "err", err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "temporary failure, try again later"}
	}
	if len(outs) == 1 && outs[0].Kind == Other {
		l.kept.Add(1)
		if path, err := l.keep(data); err != nil {
			l.logger().Error("keeping an unusable bounce message", "err", err)
		} else if path != "" {
			l.logger().Warn("bounce message kept aside", "file", path, "why", outs[0].Action)
		}
	}
	return nil
}

// keep saves data in KeepDir under a unique name.
func (l *Listener) keep(data []byte) (string, error) {
	if l.KeepDir == "" {
		return "", nil
	}
	if err := os.MkdirAll(l.KeepDir, 0o700); err != nil {
		return "", err
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	name := time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(rnd[:]) + ".eml"
	path := filepath.Join(l.KeepDir, name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

type backend struct{ l *Listener }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{l: b.l}, nil }

type session struct {
	l  *Listener
	to []string
}

func (s *session) Reset()                                    { s.to = nil }
func (s *session) Logout() error                             { return nil }
func (s *session) Mail(string, *smtp.MailOptions) error      { s.to = nil; return nil }
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error { s.to = append(s.to, to); return nil }

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(r, MaxMessageBytes+1))
	if err != nil {
		return err
	}
	return s.l.handle(data, s.to)
}
