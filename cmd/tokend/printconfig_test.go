package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// serve --print-config prints the settings as the file, the environment
// and the flags make them, exits 0 without serving, shows no secret (the
// store URL's passwords, an operator key in the environment) and reads
// back as a config file to the same settings.
func TestPrintConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokend.yaml")
	if err := os.WriteFile(file, []byte("access-ttl: 7m\nadmin-addr: 127.0.0.1:9091\nstore: \"postgres://u:FilePw1@db.example/tokend\"\nlog-level: warn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TOKEND_STORE", "redis://default:EnvPw2@127.0.0.1:6379/0")
	t.Setenv("TOKEND_LOG_LEVEL", "debug")
	t.Setenv("TOKEND_ENCRYPTION_KEY", "KeyPw5KeyPw5KeyPw5KeyPw5KeyPw5KeyPw5KeyPw5A=")
	code, out, errOut := runCmd(t, "", "serve", "--config", file, "--print-config",
		"--store", "postgres://u:FlagPw3@db.example/tokend?sslpassword=Ssl4&sslmode=verify-full", "--grace", "1m")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, secret := range []string{"FilePw1", "EnvPw2", "FlagPw3", "Ssl4", "KeyPw5"} {
		if strings.Contains(out, secret) {
			t.Errorf("the output shows %s:\n%s", secret, out)
		}
	}
	for _, want := range []string{
		"store: " + redacted("postgres://u:FlagPw3@db.example/tokend?sslpassword=Ssl4&sslmode=verify-full") + "  # --store; secrets shown as xxxxx",
		"access-ttl: 7m  # config file", "admin-addr: 127.0.0.1:9091  # config file", "log-level: debug  # TOKEND_LOG_LEVEL",
		"grace: 1m  # --grace", "refresh-idle: 720h  # default", "issuer: http://127.0.0.1:8080  #",
		"# an operator key is set in TOKEND_ENCRYPTION_KEY (not shown)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}

	// The output is a config file for the same settings (the store's
	// secrets aside).
	for _, k := range []string{"TOKEND_STORE", "TOKEND_LOG_LEVEL", "TOKEND_ENCRYPTION_KEY"} {
		t.Setenv(k, "")
	}
	printed := filepath.Join(dir, "printed.yaml")
	if err := os.WriteFile(printed, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	back, err := loadSettings(pflag.NewFlagSet("serve", pflag.ContinueOnError), []string{"--config", printed}, os.Getenv)
	if err != nil {
		t.Fatalf("the output does not read back: %v", err)
	}
	want, err := loadSettings(pflag.NewFlagSet("serve", pflag.ContinueOnError), []string{"--config", file,
		"--store", redacted("postgres://u:FlagPw3@db.example/tokend?sslpassword=Ssl4&sslmode=verify-full"), "--grace", "1m", "--log-level", "debug"}, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if back != want {
		t.Errorf("read back:\n%+v\nwant\n%+v", back, want)
	}
}
