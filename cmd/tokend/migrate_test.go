package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// tokend migrate brings a store's schema up to date; like every admin
// command it creates a SQLite store only with --init.
func TestMigrate(t *testing.T) {
	store := "sqlite://" + filepath.Join(t.TempDir(), "tokend.db")
	if code, _, errOut := runCmd(t, "", "migrate", "--store", store); code != 1 || !strings.Contains(errOut, "no store at") {
		t.Fatalf("migrate of a missing store: exit %d: %s", code, errOut)
	}
	for _, args := range [][]string{{"--init"}, nil} { // created, then already current
		code, out, errOut := runCmd(t, "", append([]string{"migrate", "--store", store}, args...)...)
		if code != 0 || out != "the store's schema is this tokend's\n" || !strings.Contains(errOut, "tokend: store sqlite://") {
			t.Fatalf("migrate %v: exit %d: %q %q", args, code, out, errOut)
		}
	}
	if code, _, _ := runCmd(t, "", "client", "list", "--store", store); code != 0 {
		t.Fatalf("client list on the migrated store: exit %d", code)
	}
}
