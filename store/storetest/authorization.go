package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// The cases of the authorization code flow's records: clients' new
// fields, codes and their redemption, sessions, consents, and what the
// deletes do to them.

// codeTTL is the lifetime of the suite's authorization codes.
const codeTTL = time.Minute

// newCode creates an unredeemed code of client for subject, created at t0
// and expiring codeTTL later, of the live session "sess" (created for
// subject if there is none yet), and returns it.
func newCode(t *testing.T, s store.Store, client, subject string) store.AuthorizationCode {
	t.Helper()
	err := s.CreateSession(t.Context(), store.Session{ID: "sess", Hash: hash(), Subject: subject, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
	if err != nil && !errors.Is(err, store.ErrExists) {
		t.Fatal(err)
	}
	c := store.AuthorizationCode{Hash: hash(), ClientID: client, RedirectURI: "https://app.example/cb", CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		Subject: subject, Scope: "openid read", Nonce: "n-0S6_WzA2Mj", Resources: []string{"https://api.example", "https://files.example"},
		SessionID: "sess", AuthTime: t0.Add(-time.Minute), CreatedAt: t0, ExpiresAt: t0.Add(codeTTL)}
	must(t, s.CreateAuthorizationCode(t.Context(), c))
	return c
}

// codeFamily is the family a redemption of c at at starts: for c's
// resources.
func codeFamily(c store.AuthorizationCode, id string, at time.Time) store.Family {
	return store.Family{ID: id, ClientID: c.ClientID, Subject: c.Subject, Scope: c.Scope, SessionID: c.SessionID, Audience: slices.Clone(c.Resources),
		CreatedAt: at, LastUsedAt: at, IdleExpiresAt: at.Add(time.Hour), ExpiresAt: at.Add(24 * time.Hour), TokenHash: hash()}
}

// sameCode reports whether a and b hold the same values.
func sameCode(a, b store.AuthorizationCode) bool {
	return bytes.Equal(a.Hash, b.Hash) && a.ClientID == b.ClientID && a.RedirectURI == b.RedirectURI && a.CodeChallenge == b.CodeChallenge &&
		a.Subject == b.Subject && a.Scope == b.Scope && a.Nonce == b.Nonce && slices.Equal(a.Resources, b.Resources) &&
		a.SessionID == b.SessionID && a.AuthTime.Equal(b.AuthTime) && a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.RedeemedAt.Equal(b.RedeemedAt) && a.FamilyID == b.FamilyID
}

// Client's fields for the code flow round trip through GetClient and
// ListClients, on copies; a client without them reads back none.
func testClientAuthorization(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := store.Client{ID: "spa", RedirectURIs: []string{"https://app.example/cb", "http://127.0.0.1/cb", "com.example.app:/cb"},
		PostLogoutRedirectURIs: []string{"https://app.example/bye"}, ThirdParty: true,
		Resources: []string{"https://api.example", "https://files.example/v1"}, CreatedAt: t0}
	must(t, s.CreateClient(ctx, c))
	must(t, s.CreateClient(ctx, store.Client{ID: "plain", CreatedAt: t0}))
	c.RedirectURIs[0] = "https://changed.example" // the store keeps its own copy
	want := "[https://app.example/cb http://127.0.0.1/cb com.example.app:/cb] [https://app.example/bye] true [https://api.example https://files.example/v1]"
	show := func(c store.Client) string {
		return fmt.Sprint(c.RedirectURIs, " ", c.PostLogoutRedirectURIs, " ", c.ThirdParty, " ", c.Resources)
	}
	got, err := s.GetClient(ctx, "spa")
	must(t, err)
	if show(got) != want {
		t.Fatalf("GetClient = %s, want %s", show(got), want)
	}
	got.RedirectURIs[0], got.PostLogoutRedirectURIs[0], got.Resources[0] = "x", "x", "x"
	if again, _ := s.GetClient(ctx, "spa"); show(again) != want {
		t.Fatal("the store shares memory with its callers")
	}
	all, err := s.ListClients(ctx)
	must(t, err)
	if len(all) != 2 || all[0].ID != "plain" || show(all[1]) != want ||
		len(all[0].RedirectURIs)+len(all[0].PostLogoutRedirectURIs)+len(all[0].Resources) != 0 || all[0].ThirdParty {
		t.Fatalf("ListClients = %+v", all)
	}
}

// A code round trips every field; a second code with its hash is
// ErrExists; an unknown hash is ErrNotFound. Redeeming it starts the
// family, with its SessionID, and marks the code redeemed at the family's
// creation; presenting it again is ErrRedeemed and revokes that family
// with ReasonCodeReplay, starting none.
func testAuthorizationCode(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := newCode(t, s, "app", "alice")
	got, err := s.GetAuthorizationCode(ctx, c.Hash)
	must(t, err)
	if !sameCode(got, c) {
		t.Fatalf("GetAuthorizationCode = %+v, want %+v", got, c)
	}
	got.Resources[0], got.Hash[0] = "x", got.Hash[0]^1
	if again, _ := s.GetAuthorizationCode(ctx, c.Hash); !sameCode(again, c) {
		t.Fatal("the store shares memory with its callers")
	}
	dup := c
	dup.Subject = "mallory"
	wantErr(t, s.CreateAuthorizationCode(ctx, dup), store.ErrExists)
	_, err = s.GetAuthorizationCode(ctx, hash())
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RedeemAuthorizationCode(ctx, hash(), codeFamily(c, "nope", t0))
	wantErr(t, err, store.ErrNotFound)
	if _, err := s.GetFamily(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a redemption of an unknown code created its family: %v", err)
	}

	// A family ID that is taken: ErrExists, and the code stays unredeemed.
	newFamily(t, s, "taken", "app", "alice")
	_, err = s.RedeemAuthorizationCode(ctx, c.Hash, codeFamily(c, "taken", t0.Add(time.Second)))
	wantErr(t, err, store.ErrExists)
	if again, _ := s.GetAuthorizationCode(ctx, c.Hash); !sameCode(again, c) {
		t.Fatalf("a refused redemption changed the code: %+v", again)
	}

	at := t0.Add(10 * time.Second)
	red, err := s.RedeemAuthorizationCode(ctx, c.Hash, codeFamily(c, "f", at))
	must(t, err)
	want := c
	want.RedeemedAt, want.FamilyID = at, "f"
	if !sameCode(red, want) {
		t.Fatalf("RedeemAuthorizationCode = %+v, want %+v", red, want)
	}
	if got, _ := s.GetAuthorizationCode(ctx, c.Hash); !sameCode(got, want) {
		t.Fatalf("the redeemed code reads %+v, want %+v", got, want)
	}
	f, err := s.GetFamily(ctx, "f")
	must(t, err)
	if f.SessionID != "sess" || f.Subject != "alice" || f.ClientID != "app" || !f.CreatedAt.Equal(at) || !f.RevokedAt.IsZero() ||
		!slices.Equal(f.Audience, c.Resources) {
		t.Fatalf("the family the code started: %+v", f)
	}

	replay := t0.Add(20 * time.Second)
	red, err = s.RedeemAuthorizationCode(ctx, c.Hash, codeFamily(c, "f2", replay))
	wantErr(t, err, store.ErrRedeemed)
	if red.FamilyID != "f" || !red.RedeemedAt.Equal(at) {
		t.Fatalf("the replayed code returned %+v; want the first redemption's", red)
	}
	wantRevoked(t, s, "f", replay, store.ReasonCodeReplay)
	if _, err := s.GetFamily(ctx, "f2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a replay created its family: %v", err)
	}
	// A later replay keeps the first revocation, even past the expiry.
	_, err = s.RedeemAuthorizationCode(ctx, c.Hash, codeFamily(c, "f3", t0.Add(2*codeTTL)))
	wantErr(t, err, store.ErrRedeemed)
	wantRevoked(t, s, "f", replay, store.ReasonCodeReplay)
	wantActive(t, s, "taken")
}

// A code is redeemable until just before its ExpiresAt; from ExpiresAt
// on it is ErrExpired and nothing changes.
func testAuthorizationCodeExpiry(t *testing.T, s store.Store) {
	ctx := t.Context()
	late := newCode(t, s, "app", "alice")
	_, err := s.RedeemAuthorizationCode(ctx, late.Hash, codeFamily(late, "late", late.ExpiresAt))
	wantErr(t, err, store.ErrExpired)
	if got, _ := s.GetAuthorizationCode(ctx, late.Hash); !sameCode(got, late) {
		t.Fatalf("an expired redemption changed the code: %+v", got)
	}
	if _, err := s.GetFamily(ctx, "late"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an expired redemption created its family: %v", err)
	}
	last := newCode(t, s, "app", "alice")
	got, err := s.RedeemAuthorizationCode(ctx, last.Hash, codeFamily(last, "last", last.ExpiresAt.Add(-time.Microsecond)))
	must(t, err)
	if got.FamilyID != "last" {
		t.Fatalf("redeemed a microsecond before expiry: %+v", got)
	}
}

// A code whose session has ended (EndSession, DeleteUser) or is gone
// (never stored, or deleted by DeleteExpired) is ErrSessionEnded and
// nothing changes; a replay of a code redeemed before its session ended
// is still ErrRedeemed and revokes the first family; a code without a
// session is redeemed.
func testRedeemEndedSession(t *testing.T, s store.Store) {
	ctx := t.Context()
	at := t0.Add(time.Second)
	refused := func(c store.AuthorizationCode, fam string) {
		t.Helper()
		got, err := s.RedeemAuthorizationCode(ctx, c.Hash, codeFamily(c, fam, at))
		wantErr(t, err, store.ErrSessionEnded)
		if !sameCode(got, c) {
			t.Fatalf("the refused code returned %+v, want %+v", got, c)
		}
		if again, _ := s.GetAuthorizationCode(ctx, c.Hash); !sameCode(again, c) {
			t.Fatalf("a refused redemption changed the code: %+v", again)
		}
		if _, err := s.GetFamily(ctx, fam); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a redemption of a code of an ended session created its family: %v", err)
		}
	}
	withSession := func(id, subject string) store.AuthorizationCode {
		t.Helper()
		c := store.AuthorizationCode{Hash: hash(), ClientID: "app", Subject: subject, SessionID: id, CreatedAt: t0, ExpiresAt: t0.Add(codeTTL)}
		must(t, s.CreateAuthorizationCode(ctx, c))
		return c
	}
	for _, id := range []string{"s-live", "s-out", "s-old"} {
		must(t, s.CreateSession(ctx, store.Session{ID: id, Hash: hash(), Subject: "alice", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	}
	must(t, s.CreateSession(ctx, store.Session{ID: "s-bob", Hash: hash(), Subject: "bob", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	must(t, s.CreateUser(ctx, store.User{Name: "bob", PasswordHash: "$h", CreatedAt: t0}))
	first, out, bobs, unknown := withSession("s-live", "alice"), withSession("s-out", "alice"), withSession("s-bob", "bob"), withSession("s-never", "alice")
	_, err := s.RedeemAuthorizationCode(ctx, first.Hash, codeFamily(first, "first", at))
	must(t, err)

	must(t, s.EndSession(ctx, "s-out", t0))
	refused(out, "out")
	_, err = s.DeleteUser(ctx, "bob", t0)
	must(t, err)
	refused(bobs, "bob")
	refused(unknown, "unknown")
	must(t, s.EndSession(ctx, "s-old", t0))
	old := withSession("s-old", "alice")
	_, err = s.DeleteExpired(ctx, t0.Add(time.Millisecond)) // s-old ended before: deleted
	must(t, err)
	if _, err := s.GetSession(ctx, "s-old"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session ended before DeleteExpired's time: %v; want deleted", err)
	}
	refused(old, "old")

	must(t, s.EndSession(ctx, "s-live", t0.Add(2*time.Second)))
	_, err = s.RedeemAuthorizationCode(ctx, first.Hash, codeFamily(first, "again", t0.Add(3*time.Second)))
	wantErr(t, err, store.ErrRedeemed)
	wantRevoked(t, s, "first", t0.Add(3*time.Second), store.ReasonCodeReplay)

	none := withSession("", "carol")
	if got, err := s.RedeemAuthorizationCode(ctx, none.Hash, codeFamily(none, "none", at)); err != nil || got.FamilyID != "none" {
		t.Fatalf("a code without a session: %+v %v; want redeemed", got, err)
	}
}

// concurrentRedeems is how many goroutines redeem one code at once.
const concurrentRedeems = 20

// redeemConcurrently redeems c from n goroutines at once, the i-th
// through stores[i%len(stores)] to start family "r<i>", and checks the
// outcome: exactly one succeeds, every other gets ErrRedeemed, and the
// winner's family ends up revoked for the replay.
func redeemConcurrently(t *testing.T, c store.AuthorizationCode, stores ...store.Store) {
	t.Helper()
	errs := make([]error, concurrentRedeems)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range concurrentRedeems {
		wg.Go(func() {
			<-start
			_, errs[i] = stores[i%len(stores)].RedeemAuthorizationCode(t.Context(), c.Hash, codeFamily(c, fmt.Sprint("r", i), t0.Add(time.Second)))
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("redemptions %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrRedeemed):
			t.Fatalf("redemption %d: %v; want success or store.ErrRedeemed", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no redemption succeeded")
	}
	for i, s := range stores {
		got, err := s.GetAuthorizationCode(t.Context(), c.Hash)
		must(t, err)
		if got.FamilyID != fmt.Sprint("r", winner) {
			t.Fatalf("handle %d: code redeemed for %q, want the winner's r%d", i, got.FamilyID, winner)
		}
		f, err := s.GetFamily(t.Context(), got.FamilyID)
		must(t, err)
		if f.RevokeReason != store.ReasonCodeReplay {
			t.Fatalf("handle %d: the winner's family %+v; want revoked for the replays", i, f)
		}
		fams, err := s.ListFamilies(t.Context(), store.FamilyFilter{})
		must(t, err)
		if len(fams) != 1 {
			t.Fatalf("handle %d: %d families; want only the winner's", i, len(fams))
		}
	}
}

func testConcurrentRedeem(t *testing.T, s store.Store) {
	redeemConcurrently(t, newCode(t, s, "app", "alice"), s)
}

// A code redeemed concurrently through both handles is redeemed once.
func testSharedRedeem(t *testing.T, a, b store.Store) {
	redeemConcurrently(t, newCode(t, a, "app", "alice"), a, b)
}

// sharedDeleteRaces is how many codes race a DeleteUser of their user.
const sharedDeleteRaces = 20

// Codes of a user redeemed through one handle while the other deletes
// the user: each redemption either comes first, and the delete revokes
// its family, or after, and is ErrSessionEnded. No family of the user is
// left active.
func testSharedRedeemDelete(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	must(t, a.CreateUser(ctx, store.User{Name: "alice", PasswordHash: "$h", CreatedAt: t0}))
	codes := make([]store.AuthorizationCode, sharedDeleteRaces)
	for i := range codes {
		id := fmt.Sprint("s", i)
		must(t, a.CreateSession(ctx, store.Session{ID: id, Hash: hash(), Subject: "alice", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		codes[i] = store.AuthorizationCode{Hash: hash(), ClientID: "app", Subject: "alice", SessionID: id, CreatedAt: t0, ExpiresAt: t0.Add(codeTTL)}
		must(t, a.CreateAuthorizationCode(ctx, codes[i]))
	}
	errs := make([]error, len(codes))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range codes {
		wg.Go(func() {
			<-start
			_, errs[i] = a.RedeemAuthorizationCode(ctx, c.Hash, codeFamily(c, fmt.Sprint("f", i), t0.Add(time.Second)))
		})
	}
	wg.Go(func() {
		<-start
		if _, err := b.DeleteUser(ctx, "alice", t0.Add(time.Second)); err != nil {
			t.Error(err)
		}
	})
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil && !errors.Is(err, store.ErrSessionEnded) {
			t.Fatalf("redemption %d racing DeleteUser: %v; want success or store.ErrSessionEnded", i, err)
		}
	}
	fams, err := a.ListFamilies(ctx, store.FamilyFilter{Subject: "alice"})
	must(t, err)
	for _, f := range fams {
		if f.RevokedAt.IsZero() {
			t.Fatalf("family %s of the deleted user is active: a redemption raced past DeleteUser", f.ID)
		}
	}
}

// Sessions round trip; an ID taken is ErrExists; EndSession keeps the
// first EndedAt; unknown IDs are ErrNotFound.
func testSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	sess := store.Session{ID: "s1", Hash: hash(), Subject: "alice", AuthTime: t0.Add(-time.Second), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	must(t, s.CreateSession(ctx, sess))
	wantErr(t, s.CreateSession(ctx, store.Session{ID: "s1", Hash: hash(), Subject: "bob", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}), store.ErrExists)
	got, err := s.GetSession(ctx, "s1")
	must(t, err)
	if got.ID != "s1" || !bytes.Equal(got.Hash, sess.Hash) || got.Subject != "alice" || !got.AuthTime.Equal(sess.AuthTime) ||
		!got.CreatedAt.Equal(t0) || !got.ExpiresAt.Equal(sess.ExpiresAt) || !got.EndedAt.IsZero() || !got.Active(t0) {
		t.Fatalf("GetSession = %+v, want %+v", got, sess)
	}
	got.Hash[0] ^= 1
	if again, _ := s.GetSession(ctx, "s1"); !bytes.Equal(again.Hash, sess.Hash) {
		t.Fatal("the store shares memory with its callers")
	}
	end := t0.Add(time.Minute)
	must(t, s.EndSession(ctx, "s1", end))
	must(t, s.EndSession(ctx, "s1", end.Add(time.Minute)))
	if got, _ := s.GetSession(ctx, "s1"); !got.EndedAt.Equal(end) || got.Active(end) {
		t.Fatalf("ended session: %+v; want ended at %v", got, end)
	}
	wantErr(t, s.EndSession(ctx, "nope", end), store.ErrNotFound)
	_, err = s.GetSession(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
}

// PutConsent stores and replaces; GetConsent of another pair is
// ErrNotFound.
func testConsents(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.PutConsent(ctx, store.Consent{Subject: "alice", ClientID: "app", Scopes: []string{"openid", "read"}, GrantedAt: t0}))
	must(t, s.PutConsent(ctx, store.Consent{Subject: "alice", ClientID: "other", Scopes: []string{"read"}, GrantedAt: t0}))
	must(t, s.PutConsent(ctx, store.Consent{Subject: "alice", ClientID: "app", Scopes: []string{"openid", "read", "write"}, GrantedAt: t0.Add(time.Hour)}))
	got, err := s.GetConsent(ctx, "alice", "app")
	must(t, err)
	if got.Subject != "alice" || got.ClientID != "app" || fmt.Sprint(got.Scopes) != "[openid read write]" || !got.GrantedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("GetConsent = %+v", got)
	}
	if got, _ := s.GetConsent(ctx, "alice", "other"); fmt.Sprint(got.Scopes) != "[read]" {
		t.Fatalf("GetConsent of the other client = %+v", got)
	}
	_, err = s.GetConsent(ctx, "bob", "app")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetConsent(ctx, "app", "alice")
	wantErr(t, err, store.ErrNotFound)
}

// Family.SessionID round trips, and the SessionID filter lists and
// revokes the session's families only.
func testFamilySession(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, sid := range []string{"s1", "s1", "s2", ""} {
		f := store.Family{ID: fmt.Sprint("f", i), ClientID: "app", Subject: "alice", SessionID: sid, CreatedAt: t0.Add(time.Duration(i) * time.Second),
			LastUsedAt: t0, IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(24 * time.Hour), TokenHash: hash()}
		must(t, s.CreateFamily(ctx, f))
	}
	if f, _ := s.GetFamily(ctx, "f2"); f.SessionID != "s2" {
		t.Fatalf("GetFamily = %+v, want session s2", f)
	}
	list := func(filter store.FamilyFilter) string {
		t.Helper()
		fams, err := s.ListFamilies(ctx, filter)
		must(t, err)
		var ids []string
		for _, f := range fams {
			ids = append(ids, f.ID+"/"+f.SessionID)
		}
		return fmt.Sprint(ids)
	}
	if got := list(store.FamilyFilter{SessionID: "s1"}); got != "[f0/s1 f1/s1]" {
		t.Fatalf("by session: %s", got)
	}
	if got := list(store.FamilyFilter{SessionID: "s1", ClientID: "other"}); got != "[]" {
		t.Fatalf("by session and another client: %s", got)
	}
	n, err := s.RevokeFamilies(ctx, store.FamilyFilter{SessionID: "s1", Subject: "alice"}, t0.Add(time.Minute), "logout")
	must(t, err)
	if n != 2 {
		t.Fatalf("RevokeFamilies by session revoked %d, want 2", n)
	}
	wantRevoked(t, s, "f1", t0.Add(time.Minute), "logout")
	wantActive(t, s, "f2")
	wantActive(t, s, "f3")
	if got := list(store.FamilyFilter{ActiveAt: t0.Add(2 * time.Minute)}); got != "[f2/s2 f3/]" {
		t.Fatalf("active after the session's revocation: %s", got)
	}
}

// Family.Audience round trips through CreateFamily, GetFamily,
// ListFamilies, Rotate (its result and the family after it) and
// RedeemAuthorizationCode, on copies; a family without one reads back
// none.
func testFamilyAudience(t *testing.T, s store.Store) {
	ctx := t.Context()
	aud := []string{"https://api.example", "https://files.example/v1"}
	want := fmt.Sprint(aud)
	f := store.Family{ID: "fa", ClientID: "app", Subject: "alice", Audience: slices.Clone(aud), CreatedAt: t0, LastUsedAt: t0,
		IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(24 * time.Hour), TokenHash: hash()}
	must(t, s.CreateFamily(ctx, f))
	f.Audience[0] = "https://changed.example" // the store keeps its own copy
	newFamily(t, s, "plain", "app", "alice")
	got, err := s.GetFamily(ctx, "fa")
	must(t, err)
	if fmt.Sprint(got.Audience) != want {
		t.Fatalf("GetFamily audience = %q, want %s", got.Audience, want)
	}
	got.Audience[0] = "x"
	if again, _ := s.GetFamily(ctx, "fa"); fmt.Sprint(again.Audience) != want {
		t.Fatal("the store shares memory with its callers")
	}
	fams, err := s.ListFamilies(ctx, store.FamilyFilter{ClientID: "app"})
	must(t, err)
	if len(fams) != 2 || fams[0].ID != "fa" || fmt.Sprint(fams[0].Audience) != want || len(fams[1].Audience) != 0 {
		t.Fatalf("ListFamilies = %+v", fams)
	}

	tk1 := token{"fa", 1, hash()}
	res, err := rotate(t, s, token{"fa", 0, f.TokenHash}, tk1.hash, t0.Add(time.Minute))
	must(t, err)
	if res.Outcome != store.Rotated || fmt.Sprint(res.Family.Audience) != want {
		t.Fatalf("Rotate = %v, audience %q; want rotated, %s", res.Outcome, res.Family.Audience, want)
	}
	res, err = rotate(t, s, token{"fa", 0, f.TokenHash}, tk1.hash, t0.Add(time.Minute+time.Second))
	must(t, err)
	if res.Outcome != store.Repeated || fmt.Sprint(res.Family.Audience) != want {
		t.Fatalf("retry within grace = %v, audience %q; want repeated, %s", res.Outcome, res.Family.Audience, want)
	}
	if again, _ := s.GetFamily(ctx, "fa"); again.Generation != 1 || fmt.Sprint(again.Audience) != want {
		t.Fatalf("after the rotation: generation %d, audience %q", again.Generation, again.Audience)
	}
	_, tk := newFamily(t, s, "plain2", "app", "bob")
	if res, err := rotate(t, s, tk, hash(), t0.Add(time.Minute)); err != nil || len(res.Family.Audience) != 0 {
		t.Fatalf("Rotate of a family without audience = %+v %v", res.Family, err)
	}

	c := newCode(t, s, "app", "carol")
	_, err = s.RedeemAuthorizationCode(ctx, c.Hash, codeFamily(c, "fc", t0.Add(time.Second)))
	must(t, err)
	if got, err := s.GetFamily(ctx, "fc"); err != nil || !slices.Equal(got.Audience, c.Resources) {
		t.Fatalf("the redeemed code's family: audience %q %v; want %q", got.Audience, err, c.Resources)
	}
}

// DeleteUser ends the user's sessions (keeping an earlier end) and
// deletes their consents; DeleteClient deletes the client's consents and
// unredeemed codes. Other users' and clients' records are untouched.
func testAuthorizationDeletes(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, store.User{Name: "alice", PasswordHash: "$h", CreatedAt: t0}))
	must(t, s.CreateClient(ctx, store.Client{ID: "app", CreatedAt: t0}))
	for _, sess := range []store.Session{
		{ID: "a1", Subject: "alice"}, {ID: "a2", Subject: "alice", EndedAt: t0.Add(time.Second)}, {ID: "b1", Subject: "bob"},
	} {
		sess.Hash, sess.CreatedAt, sess.ExpiresAt = hash(), t0, t0.Add(time.Hour)
		must(t, s.CreateSession(ctx, sess))
	}
	for _, c := range [][2]string{{"alice", "app"}, {"alice", "other"}, {"bob", "app"}, {"bob", "other"}} {
		must(t, s.PutConsent(ctx, store.Consent{Subject: c[0], ClientID: c[1], Scopes: []string{"read"}, GrantedAt: t0}))
	}
	at := t0.Add(time.Minute)
	_, err := s.DeleteUser(ctx, "alice", at)
	must(t, err)
	for id, want := range map[string]time.Time{"a1": at, "a2": t0.Add(time.Second), "b1": {}} {
		got, err := s.GetSession(ctx, id)
		must(t, err)
		if !got.EndedAt.Equal(want) {
			t.Fatalf("session %s after DeleteUser: ended at %v, want %v", id, got.EndedAt, want)
		}
	}
	wantConsents := func(when string, want map[[2]string]bool) {
		t.Helper()
		for pair, exists := range want {
			_, err := s.GetConsent(ctx, pair[0], pair[1])
			if exists != (err == nil) || (err != nil && !errors.Is(err, store.ErrNotFound)) {
				t.Fatalf("consent of %s to %s %s: %v; want present %v", pair[0], pair[1], when, err, exists)
			}
		}
	}
	wantConsents("after DeleteUser", map[[2]string]bool{{"alice", "app"}: false, {"alice", "other"}: false, {"bob", "app"}: true, {"bob", "other"}: true})

	redeemed, unredeemed, kept := newCode(t, s, "app", "bob"), newCode(t, s, "app", "bob"), newCode(t, s, "other", "bob")
	_, err = s.RedeemAuthorizationCode(ctx, redeemed.Hash, codeFamily(redeemed, "f", t0.Add(time.Second)))
	must(t, err)
	_, err = s.DeleteClient(ctx, "app", at)
	must(t, err)
	wantConsents("after DeleteClient", map[[2]string]bool{{"bob", "app"}: false, {"bob", "other"}: true})
	_, err = s.GetAuthorizationCode(ctx, unredeemed.Hash)
	wantErr(t, err, store.ErrNotFound)
	for _, c := range []store.AuthorizationCode{redeemed, kept} {
		if _, err := s.GetAuthorizationCode(ctx, c.Hash); err != nil {
			t.Fatalf("code of %s after DeleteClient of app: %v; want kept", c.ClientID, err)
		}
	}
	// A replay of the redeemed code still finds it.
	_, err = s.RedeemAuthorizationCode(ctx, redeemed.Hash, codeFamily(redeemed, "g", at.Add(time.Second)))
	wantErr(t, err, store.ErrRedeemed)
}

// DeleteExpired deletes codes expired by before (ExpiresAt not after it),
// redeemed or not, and sessions ended before it or expired by then; it
// still counts families only.
func testAuthorizationDeleteExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	redeemed, open := newCode(t, s, "app", "alice"), newCode(t, s, "app", "alice")
	_, err := s.RedeemAuthorizationCode(ctx, redeemed.Hash, codeFamily(redeemed, "f", t0.Add(time.Second)))
	must(t, err)
	ended := t0.Add(10 * time.Second)
	for _, sess := range []store.Session{
		{ID: "ended", EndedAt: ended, ExpiresAt: t0.Add(time.Hour)}, {ID: "expiring", ExpiresAt: t0.Add(2 * codeTTL)},
	} {
		sess.Hash, sess.Subject, sess.CreatedAt = hash(), "alice", t0
		must(t, s.CreateSession(ctx, sess))
	}
	exists := func() string {
		var out []string
		for _, c := range []store.AuthorizationCode{redeemed, open} {
			if _, err := s.GetAuthorizationCode(ctx, c.Hash); err == nil {
				out = append(out, "code")
			}
		}
		for _, id := range []string{"ended", "expiring"} {
			if _, err := s.GetSession(ctx, id); err == nil {
				out = append(out, id)
			}
		}
		return fmt.Sprint(out)
	}
	for _, step := range []struct {
		before time.Time
		want   string
	}{
		{ended, "[code code ended expiring]"},
		{ended.Add(time.Microsecond), "[code code expiring]"},
		{redeemed.ExpiresAt.Add(-time.Microsecond), "[code code expiring]"},
		{redeemed.ExpiresAt, "[expiring]"}, // refused from ExpiresAt on
		{t0.Add(2 * codeTTL), "[]"},
	} {
		n, err := s.DeleteExpired(ctx, step.before)
		must(t, err)
		if n != 0 {
			t.Fatalf("DeleteExpired(t0+%v) counted %d families; the one family is active", step.before.Sub(t0), n)
		}
		if got := exists(); got != step.want {
			t.Fatalf("after DeleteExpired(t0+%v): %s; want %s", step.before.Sub(t0), got, step.want)
		}
	}
	wantActive(t, s, "f")
}

// Identifiers that break store.IDRule are refused by every new method
// that would store them (store.ErrInvalid) and unknown to every lookup;
// an empty code hash is refused too.
func testAuthorizationIdentifiers(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := newCode(t, s, "app", "alice")
	for _, bad := range append(BadIDs, struct{ Name, ID string }{"empty", ""}) {
		t.Run(bad.Name, func(t *testing.T) {
			checkBadAuthorizationID(ctx, t, s, c, bad.ID)
		})
	}
	empty := c
	empty.Hash = nil
	wantErr(t, s.CreateAuthorizationCode(ctx, empty), store.ErrInvalid)
	if got, _ := s.GetAuthorizationCode(ctx, c.Hash); !sameCode(got, c) {
		t.Fatalf("the refused calls changed the code: %+v", got)
	}
	fams, err := s.ListFamilies(ctx, store.FamilyFilter{})
	must(t, err)
	if len(fams) != 0 {
		t.Fatalf("the refused calls created families: %+v", fams)
	}
}

func checkBadAuthorizationID(ctx context.Context, t *testing.T, s store.Store, c store.AuthorizationCode, id string) {
	t.Helper()
	code := func(mod func(*store.AuthorizationCode)) store.AuthorizationCode {
		d := c
		d.Hash = hash()
		mod(&d)
		return d
	}
	fam := func(mod func(*store.Family)) store.Family {
		f := codeFamily(c, "g", t0)
		mod(&f)
		return f
	}
	redeem := func(f store.Family) error { _, err := s.RedeemAuthorizationCode(ctx, c.Hash, f); return err }
	sess := store.Session{ID: "s", Subject: "alice", Hash: hash(), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	invalid := map[string]error{
		"CreateAuthorizationCode client":  s.CreateAuthorizationCode(ctx, code(func(d *store.AuthorizationCode) { d.ClientID = id })),
		"CreateAuthorizationCode subject": s.CreateAuthorizationCode(ctx, code(func(d *store.AuthorizationCode) { d.Subject = id })),
		"RedeemAuthorizationCode family":  redeem(fam(func(f *store.Family) { f.ID = id })),
		"RedeemAuthorizationCode subject": redeem(fam(func(f *store.Family) { f.Subject = id })),
		"CreateSession ID":                s.CreateSession(ctx, store.Session{ID: id, Subject: sess.Subject, ExpiresAt: sess.ExpiresAt}),
		"CreateSession subject":           s.CreateSession(ctx, store.Session{ID: "s", Subject: id, ExpiresAt: sess.ExpiresAt}),
		"PutConsent subject":              s.PutConsent(ctx, store.Consent{Subject: id, ClientID: "app"}),
		"PutConsent client":               s.PutConsent(ctx, store.Consent{Subject: "alice", ClientID: id}),
	}
	if id != "" { // an empty SessionID is none
		invalid["CreateAuthorizationCode session"] = s.CreateAuthorizationCode(ctx, code(func(d *store.AuthorizationCode) { d.SessionID = id }))
		invalid["RedeemAuthorizationCode session"] = redeem(fam(func(f *store.Family) { f.SessionID = id }))
		invalid["CreateFamily session"] = s.CreateFamily(ctx, fam(func(f *store.Family) { f.SessionID = id }))
	}
	for call, err := range invalid {
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: err = %v, want store.ErrInvalid", call, err)
		}
	}
	_, errSess := s.GetSession(ctx, id)
	_, errCons1 := s.GetConsent(ctx, id, "app")
	_, errCons2 := s.GetConsent(ctx, "alice", id)
	for call, err := range map[string]error{
		"GetSession": errSess, "EndSession": s.EndSession(ctx, id, t0), "GetConsent subject": errCons1, "GetConsent client": errCons2,
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: err = %v, want store.ErrNotFound", call, err)
		}
	}
	if id == "" {
		return // an empty filter field matches everything
	}
	if fams, err := s.ListFamilies(ctx, store.FamilyFilter{SessionID: id}); len(fams) != 0 || err != nil {
		t.Errorf("ListFamilies by session = %d families, %v; want none", len(fams), err)
	}
	if n, err := s.RevokeFamilies(ctx, store.FamilyFilter{SessionID: id}, t0, "logout"); n != 0 || err != nil {
		t.Errorf("RevokeFamilies by session = %d, %v; want 0, nil", n, err)
	}
}
