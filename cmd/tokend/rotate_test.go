package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/store/sqlite"
)

// tokend keys rotate: the first key of an empty store signs at once; a
// later one signs --key-reload + --jwks-max-age after it was made, when
// the old key retires, and the command says when.
func TestKeysRotateLead(t *testing.T) {
	dir := t.TempDir()
	storeURL := "sqlite://" + filepath.Join(dir, "t.db")
	if code, _, errOut := runCmd(t, "", "keys", "rotate", "--init", "--store", storeURL); code != 0 {
		t.Fatalf("keys rotate: %s", errOut)
	}
	code, out, errOut := runCmd(t, "", "keys", "rotate", "--key-reload", "5s", "--jwks-max-age", "1m", "--store", storeURL)
	if code != 0 || !strings.Contains(out, "signs from") || !strings.Contains(out, "in 1m5s") {
		t.Fatalf("keys rotate: exit %d, %q %q; want it to say the key signs in 1m5s", code, out, errOut)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ks, err := st.ListKeys(t.Context())
	if err != nil || len(ks) != 2 {
		t.Fatalf("ListKeys: %d keys, %v; want 2", len(ks), err)
	}
	if !ks[0].NotBefore.Equal(ks[0].CreatedAt) {
		t.Fatalf("first key %+v; want it to sign from its creation", ks[0])
	}
	if lead := ks[1].NotBefore.Sub(ks[1].CreatedAt); lead != 65*time.Second || !ks[0].RetiredAt.Equal(ks[1].NotBefore) {
		t.Fatalf("second key signs %v after its creation, old key retired at %v; want 1m5s, at %v", lead, ks[0].RetiredAt, ks[1].NotBefore)
	}
	if !strings.Contains(out, ks[1].NotBefore.UTC().Format(time.RFC3339)) {
		t.Fatalf("keys rotate said %q; want the time %v", out, ks[1].NotBefore)
	}
}
