// Package capture is a small SMTP server that keeps what it receives: the
// inbox of the demo command and of tests. It listens on loopback only,
// with no authentication and no TLS, and accepts every message unless a
// Reply hook refuses a recipient.
package capture

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// MaxMessageBytes is the largest message accepted.
const MaxMessageBytes = 32 << 20

// Received is one message as the server got it.
type Received struct {
	From string   // MAIL FROM (envelope sender)
	To   []string // accepted RCPT TO addresses
	Data []byte   // the message, headers and body, with CRLF line ends
	Path string   // the .eml file, when the server saves to a directory
	At   time.Time
}

// Server is a running capture server.
type Server struct {
	// Dir is where each message is saved as NNNNNN.eml (1-based arrival
	// number); "" keeps messages in memory only. Set by Start.
	Dir string

	srv *smtp.Server
	ln  net.Listener

	mu    sync.Mutex
	msgs  []Received
	reply func(from, to string) error
	done  chan struct{}
	err   error
}

// Start listens on addr, which must be a loopback address ("127.0.0.1:0"
// picks a free port), and serves in a goroutine. Messages are saved to dir
// unless dir is "".
func Start(addr, dir string) (*Server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("capture: address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("capture: address %q: only loopback addresses are allowed", addr)
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("capture: %w", err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	s := &Server{Dir: dir, ln: ln, done: make(chan struct{})}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "capture.localhost"
	srv.MaxMessageBytes = MaxMessageBytes
	srv.MaxRecipients = 1000
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv = srv
	go func() {
		err := srv.Serve(ln)
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.done)
	}()
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Host and Port split Addr, for SMTP client configurations.
func (s *Server) Host() string { h, _, _ := net.SplitHostPort(s.Addr()); return h }

// Port is the TCP port the server listens on.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// SetReply installs a hook called for each RCPT TO. If it returns an
// error, the recipient is refused: a *smtp.SMTPError is sent as is (e.g.
// 550 5.1.1 or 451 4.3.0), any other error as "451 4.0.0". nil removes the
// hook. It may be called while clients are connected.
func (s *Server) SetReply(f func(from, to string) error) {
	s.mu.Lock()
	s.reply = f
	s.mu.Unlock()
}

// Messages returns the messages received so far, in arrival order.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// Count is the number of messages received.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// Close stops the server and drops open sessions.
func (s *Server) Close() error {
	err := s.srv.Close()
	// Serve may not have registered the listener yet: close it too.
	if lerr := s.ln.Close(); lerr != nil && err == nil && !errors.Is(lerr, net.ErrClosed) {
		err = lerr
	}
	<-s.done
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *Server) hook() func(from, to string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reply
}

// store records one message, saving it first when the server has a Dir.
func (s *Server) store(r Received) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Dir != "" {
		r.Path = filepath.Join(s.Dir, fmt.Sprintf("%06d.eml", len(s.msgs)+1))
		tmp := r.Path + ".tmp"
		if err := os.WriteFile(tmp, r.Data, 0o644); err != nil {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot save the message"}
		}
		if err := os.Rename(tmp, r.Path); err != nil {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot save the message"}
		}
	}
	s.msgs = append(s.msgs, r)
	return nil
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s    *Server
	from string
	to   []string
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.from, ss.to = from, nil
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if f := ss.s.hook(); f != nil {
		if err := f(ss.from, to); err != nil {
			var se *smtp.SMTPError
			if errors.As(err, &se) {
				return se
			}
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 0, 0}, Message: err.Error()}
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return ss.s.store(Received{From: ss.from, To: append([]string(nil), ss.to...), Data: data, At: time.Now()})
}
