package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestHelpSpellsFlagsAsUsage: --help lists flags as the usage line spells
// them (--flag), and a group's verbs as a readable list.
func TestHelpSpellsFlagsAsUsage(t *testing.T) {
	c := newCLI(t, "")
	code, out, _ := c.run("send", "--help")
	if code != 0 || !strings.Contains(out, "\n  --config FILE\n") || !strings.Contains(out, "\n  --yes\n") || strings.Contains(out, "\n  -config") {
		t.Errorf("send --help: exit %d\n%s", code, out)
	}
	code, out, _ = c.run("lists", "add", "--help")
	if code != 0 || !strings.Contains(out, `stories in "top" (default 5)`) {
		t.Errorf("lists add --help: exit %d; want the defaults shown\n%s", code, out)
	}
	code, out, _ = c.run("subscribers", "--help")
	if code != 0 || !strings.Contains(out, "Verbs: add, export, import, list, remove, resubscribe, show, unsubscribe\n") {
		t.Errorf("subscribers --help: exit %d\n%s", code, out)
	}
}

// TestConfigCheckSaysWhetherTheFileWasRead: without --config, config
// check says whether newsdigest.toml was there to read.
func TestConfigCheckSaysWhetherTheFileWasRead(t *testing.T) {
	c := newCLI(t, "")
	t.Chdir(c.dir)
	out := c.ok("config", "check")
	if !strings.Contains(out, "no config file (newsdigest.toml not found)") {
		t.Errorf("config check without a file: %s", out)
	}
	var v struct {
		Config string `json:"config"`
		Read   bool   `json:"config_read"`
	}
	if err := json.Unmarshal([]byte(c.ok("config", "check", "--json")), &v); err != nil || v.Read {
		t.Errorf("config check --json without a file: %+v, %v; want config_read false", v, err)
	}
	if err := os.WriteFile("newsdigest.toml", []byte("[smtp]\nhost = \"relay.example\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = c.ok("config", "check")
	if !strings.Contains(out, "config OK: newsdigest.toml with environment overrides; smtp relay.example:") {
		t.Errorf("config check with newsdigest.toml: %s", out)
	}
	if err := json.Unmarshal([]byte(c.ok("config", "check", "--json")), &v); err != nil || !v.Read || v.Config != "newsdigest.toml" {
		t.Errorf("config check --json with newsdigest.toml: %+v, %v; want it read", v, err)
	}
}
