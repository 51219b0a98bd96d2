package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// families list --json (and sessions list --json) prints one JSON array
// with the /v1 listing's field names, the rotations and an ended family's
// reason, and never a token hash; --all includes the ended ones.
func TestFamiliesListJSON(t *testing.T) {
	u := "sqlite://" + filepath.Join(t.TempDir(), "tokend.db")
	st, err := openAdminStore(t.Context(), u, "--store", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	if err := st.CreateClient(t.Context(), store.Client{ID: "app", Grants: []string{"refresh_token"}}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []store.Family{
		{ID: "fam1", ClientID: "app", Subject: "alice", Scope: "read", CreatedAt: now, LastUsedAt: now, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour), TokenHash: []byte("hash-one-0123456789abcdef0123456")},
		{ID: "fam2", ClientID: "app", Subject: "bob", CreatedAt: now, LastUsedAt: now, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour), TokenHash: []byte("hash-two-0123456789abcdef0123456")},
	} {
		if err := st.CreateFamily(t.Context(), f); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	if code, _, errOut := runCmd(t, "", "families", "revoke", "fam2", "--store", u); code != 0 {
		t.Fatalf("revoke: %s", errOut)
	}
	var got []map[string]any
	code, out, errOut := runCmd(t, "", "sessions", "list", "--json", "--all", "--store", u)
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got) != 2 {
		t.Fatalf("exit %d, %q %s", code, out, errOut)
	}
	byID := map[string]map[string]any{}
	for _, f := range got {
		byID[f["id"].(string)] = f
	}
	a, b := byID["fam1"], byID["fam2"]
	if a["client_id"] != "app" || a["subject"] != "alice" || a["scope"] != "read" || a["rotations"] != 0.0 || a["created_at"] != now.Format(time.RFC3339) || a["revoked_at"] != nil {
		t.Errorf("fam1: %v", a)
	}
	if b["revoked_at"] == nil || b["revoke_reason"] == "" {
		t.Errorf("fam2, revoked: %v", b)
	}
	if strings.Contains(out, "hash") || strings.Contains(out, "aGFza") {
		t.Errorf("a token hash is printed: %s", out)
	}
	if code, out, _ := runCmd(t, "", "families", "list", "--json", "--store", u); code != 0 || strings.Count(out, `"id"`) != 1 {
		t.Errorf("without --all: %s", out)
	}
}
