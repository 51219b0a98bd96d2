package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// BadIDs are identifiers that store.CheckID refuses, as hostile requests
// carry them: bytes PostgreSQL refuses in text (NUL, invalid UTF-8), a
// value past its index limit, and control characters. Exported for the
// server's tests, which send each one through every endpoint.
var BadIDs = []struct{ Name, ID string }{
	{"NUL", "al\x00ice"},
	{"invalid UTF-8", "al\xffice"},
	{"surrogate half", "\xed\xa0\x80"}, // UTF-8 of U+D800, which UTF-8 forbids
	{"one byte too long", strings.Repeat("a", store.MaxIDLen+1)},
	{"past PostgreSQL's index limit", strings.Repeat("a", 4000)},
	{"terminal escape", "a\x1b[31mb"},
	{"newline", "alice\nadmin"},
	{"DEL", "alice\x7f"},
	{"C1 control", "alice\u0085"},
}

// testIdentifiers feeds every method that takes an identifier the values
// of BadIDs: each backend refuses to store them with store.ErrInvalid and
// answers a lookup as for an unknown identifier, never with a driver's
// error, and stores nothing. Identifiers at the edge of the rule round
// trip exactly.
func testIdentifiers(t *testing.T, s store.Store) {
	ctx := t.Context()
	// The records the refused calls must leave alone.
	must(t, s.CreateClient(ctx, store.Client{ID: "app", CreatedAt: t0}))
	must(t, s.CreateUser(ctx, store.User{Name: "alice", PasswordHash: "$h", CreatedAt: t0}))
	f, tk := newFamily(t, s, "f", "app", "alice")

	for _, bad := range append(BadIDs, struct{ Name, ID string }{"empty", ""}) {
		t.Run(bad.Name, func(t *testing.T) {
			checkBadIDRefused(ctx, t, s, bad.ID)
			checkBadIDUnknown(ctx, t, s, bad.ID, f, tk)
			checkBadIDMatchesNothing(ctx, t, s, bad.ID)
		})
	}
	checkNothingStored(ctx, t, s)
	checkClientIDSeparatorsRefused(ctx, t, s)

	// At the edge of the rule: held and read back exactly.
	long := strings.Repeat("é", store.MaxIDLen/2) // 256 bytes
	for i, id := range []string{long, "ſcope-K-日本-🙂", "Alice Smith", "alice@example.com"} {
		t.Run(fmt.Sprintf("valid %.12q", id), func(t *testing.T) {
			checkIDRoundTrips(ctx, t, s, id, fmt.Sprint("fam", i))
		})
	}
}

// checkBadIDRefused checks that every call storing the identifier id
// fails with store.ErrInvalid.
func checkBadIDRefused(ctx context.Context, t *testing.T, s store.Store, id string) {
	t.Helper()
	fam := func(mod func(*store.Family)) store.Family {
		g := store.Family{ID: "g", ClientID: "app", Subject: "alice", CreatedAt: t0, LastUsedAt: t0,
			IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(24 * time.Hour), TokenHash: hash()}
		mod(&g)
		return g
	}
	invalid := map[string]error{
		"CreateClient":         s.CreateClient(ctx, store.Client{ID: id, CreatedAt: t0}),
		"CreateClient MintFor": s.CreateClient(ctx, store.Client{ID: "new", MintFor: []string{"spa", id}, CreatedAt: t0}),
		"CreateUser":           s.CreateUser(ctx, store.User{Name: id, PasswordHash: "$h", CreatedAt: t0}),
		"CreateFamily ID":      s.CreateFamily(ctx, fam(func(g *store.Family) { g.ID = id })),
		"CreateFamily client":  s.CreateFamily(ctx, fam(func(g *store.Family) { g.ClientID = id })),
		"CreateFamily subject": s.CreateFamily(ctx, fam(func(g *store.Family) { g.Subject = id })),
		"RevokeAccessToken":    s.RevokeAccessToken(ctx, id, t0.Add(time.Hour)),
	}
	for call, err := range invalid {
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: err = %v, want store.ErrInvalid", call, err)
		}
	}
}

// checkBadIDUnknown checks that every call looking up the identifier id
// fails with store.ErrNotFound, as for an unknown one, including a
// rotation of family f (current token tk) on behalf of client id.
func checkBadIDUnknown(ctx context.Context, t *testing.T, s store.Store, id string, f store.Family, tk token) {
	t.Helper()
	_, errClient := s.GetClient(ctx, id)
	_, errDelClient := s.DeleteClient(ctx, id, t0)
	_, errUser := s.GetUser(ctx, id)
	_, errDelUser := s.DeleteUser(ctx, id, t0)
	_, errFamily := s.GetFamily(ctx, id)
	_, errRotate := s.Rotate(ctx, store.RotateRequest{FamilyID: id, Generation: 0, Old: tk.hash, New: hash(), Now: t0, IdleExpiresAt: t0.Add(time.Hour)})
	notFound := map[string]error{
		"GetClient":          errClient,
		"DeleteClient":       errDelClient,
		"GetUser":            errUser,
		"UpdatePasswordHash": s.UpdatePasswordHash(ctx, id, "$h", "$h2"),
		"DeleteUser":         errDelUser,
		"GetFamily":          errFamily,
		"RevokeFamily":       s.RevokeFamily(ctx, id, t0, "logout"),
		"Rotate":             errRotate,
		"RetireKey":          s.RetireKey(ctx, id, t0),
		"RevokeKey":          s.RevokeKey(ctx, id, t0),
	}
	if id != "" { // an empty RotateRequest.ClientID checks no client
		_, notFound["Rotate another client"] = s.Rotate(ctx, store.RotateRequest{FamilyID: f.ID, Generation: 0, Old: tk.hash, New: hash(),
			ClientID: id, Now: t0, IdleExpiresAt: t0.Add(time.Hour)})
	}
	for call, err := range notFound {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: err = %v, want store.ErrNotFound", call, err)
		}
	}
}

// checkBadIDMatchesNothing checks that the identifier id names no revoked
// access token and, unless empty (an empty filter field matches
// everything), filters no family to list or revoke.
func checkBadIDMatchesNothing(ctx context.Context, t *testing.T, s store.Store, id string) {
	t.Helper()
	if denied, err := s.AccessTokenRevoked(ctx, id); denied || err != nil {
		t.Errorf("AccessTokenRevoked = %v, %v; want false, nil", denied, err)
	}
	if id == "" {
		return // an empty filter field matches everything
	}
	for _, filter := range []store.FamilyFilter{{ClientID: id}, {Subject: id}, {ClientID: "app", Subject: id}} {
		fams, err := s.ListFamilies(ctx, filter)
		if len(fams) != 0 || err != nil {
			t.Errorf("ListFamilies(%+v) = %d families, %v; want none", filter, len(fams), err)
		}
		if n, err := s.RevokeFamilies(ctx, filter, t0, "logout"); n != 0 || err != nil {
			t.Errorf("RevokeFamilies(%+v) = %d, %v; want 0, nil", filter, n, err)
		}
	}
}

// checkNothingStored checks that the refused calls stored and changed
// nothing: s still holds one client, one user and one unrotated,
// unrevoked family.
func checkNothingStored(ctx context.Context, t *testing.T, s store.Store) {
	t.Helper()
	cs, err := s.ListClients(ctx)
	must(t, err)
	us, err := s.ListUsers(ctx)
	must(t, err)
	fams, err := s.ListFamilies(ctx, store.FamilyFilter{})
	must(t, err)
	if len(cs) != 1 || len(us) != 1 || len(fams) != 1 || !fams[0].RevokedAt.IsZero() || fams[0].Generation != 0 {
		t.Fatalf("after the refused calls: %d clients, %d users, %+v", len(cs), len(us), fams)
	}
}

// checkClientIDSeparatorsRefused checks that a new client's ID has no
// white space or comma either: MintFor is kept space-separated, and the
// CLI separates IDs by commas.
func checkClientIDSeparatorsRefused(ctx context.Context, t *testing.T, s store.Store) {
	t.Helper()
	for _, id := range []string{"my app", "a,b", "a\u00a0b", "a\u2028b"} {
		wantErr(t, s.CreateClient(ctx, store.Client{ID: id, CreatedAt: t0}), store.ErrInvalid)
		wantErr(t, s.CreateClient(ctx, store.Client{ID: "new", MintFor: []string{id}, CreatedAt: t0}), store.ErrInvalid)
	}
}

// checkIDRoundTrips checks that id, valid at the edge of the rule, is
// held and read back exactly as a client's ID and MintFor (unless it has
// a space), a user's name, and the client and subject of family famID.
func checkIDRoundTrips(ctx context.Context, t *testing.T, s store.Store, id, famID string) {
	t.Helper()
	if !strings.Contains(id, " ") {
		must(t, s.CreateClient(ctx, store.Client{ID: id, MintFor: []string{id}, CreatedAt: t0}))
		c, err := s.GetClient(ctx, id)
		if err != nil || c.ID != id || len(c.MintFor) != 1 || c.MintFor[0] != id {
			t.Fatalf("GetClient = %+v, %v", c, err)
		}
	}
	must(t, s.CreateUser(ctx, store.User{Name: id, PasswordHash: "$h", CreatedAt: t0}))
	if u, err := s.GetUser(ctx, id); err != nil || u.Name != id {
		t.Fatalf("GetUser = %+v, %v", u, err)
	}
	g := store.Family{ID: famID, ClientID: id, Subject: id, CreatedAt: t0, LastUsedAt: t0,
		IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(24 * time.Hour), TokenHash: hash()}
	must(t, s.CreateFamily(ctx, g))
	fams, err := s.ListFamilies(ctx, store.FamilyFilter{ClientID: id, Subject: id})
	if err != nil || len(fams) != 1 || fams[0].Subject != id || fams[0].ClientID != id {
		t.Fatalf("ListFamilies = %+v, %v", fams, err)
	}
}
