// Package tooltest finds the outside programs that the email quality gates
// run (spamassassin, mailpit, chromium). Under plain `go test` a missing
// program skips the test with a one-line reason; under CI=true (what
// .ci/run sets) it fails the test, because CI must run every gate.
package tooltest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// CI reports whether the tests run in CI (CI=true), where every gate must
// run.
func CI() bool {
	v, _ := strconv.ParseBool(os.Getenv("CI"))
	return v
}

// Need returns the path of program name, looked up in PATH and then in
// extra (full paths or directories). When it is not found the test is
// skipped, or fails under CI=true.
func Need(t testing.TB, name string, extra ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, e := range extra {
		if e == "" {
			continue
		}
		for _, p := range []string{e, filepath.Join(e, name)} {
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return p
			}
		}
	}
	Missing(t, name+" not found (bash .ci/run installs it)")
	return ""
}

// Missing skips the test with reason, or fails it under CI=true.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if CI() {
		t.Fatalf("CI=true: %s", reason)
	}
	t.Skip(reason)
}

// GoBin is where `go install` puts programs: $GOBIN, else $GOPATH/bin,
// else ~/go/bin.
func GoBin() string {
	if b := os.Getenv("GOBIN"); b != "" {
		return b
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		if p := string(out); len(p) > 1 {
			return filepath.Join(p[:len(p)-1], "bin")
		}
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, "go", "bin")
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
