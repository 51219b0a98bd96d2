package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// skew is how far apart the suite sets the clocks of two instances.
const skew = 10 * time.Second

// RunClock checks a store shared by several hosts judges time on its own
// clock, not on the caller's: newPair returns two handles on one new,
// empty database, used as by two instances whose clocks are skew behind
// and skew ahead of the database's. Every answer must be the one the
// database's clock gives:
//   - a family created by the instance behind, with 5 s of idle time, is
//     active when the instance ahead rotates it (by either instance's
//     clock its idle time would be over or nearly);
//   - the instance ahead retries the old token within a 5 s grace by the
//     database's clock (by its own, 10 s after the rotation): Repeated;
//   - the instance behind retries it with a grace of 1 µs, which the
//     database's clock has passed (by the instance's own, the rotation is
//     in its future): ReuseDetected;
//   - an authorization code created by the instance behind, valid for
//     5 s, is redeemed by the instance ahead (by whose clock it expired
//     5 s ago), and marked redeemed on the database's clock;
//   - a code created by the instance ahead, valid for 1 µs, is expired
//     when the instance behind redeems it (by whose clock the code is not
//     even created yet).
//
// The backends that use RotateRequest.Now (memory, SQLite: one host, one
// clock) are exempt.
func RunClock(t *testing.T, newPair func(t *testing.T) (a, b store.Store)) {
	behind, ahead := newPair(t)
	t.Cleanup(func() { _ = behind.Close(); _ = ahead.Close() })
	ctx := t.Context()
	clockBehind := func() time.Time { return time.Now().Add(-skew) }
	clockAhead := func() time.Time { return time.Now().Add(skew) }

	now := clockBehind()
	f := store.Family{ID: "f", ClientID: "c", Subject: "alice", Audience: []string{"https://api.example"}, CreatedAt: now, LastUsedAt: now,
		IdleExpiresAt: now.Add(5 * time.Second), ExpiresAt: now.Add(time.Hour), TokenHash: hash()}
	must(t, behind.CreateFamily(ctx, f))
	tk0 := token{"f", 0, f.TokenHash}
	got, err := ahead.GetFamily(ctx, "f")
	must(t, err)
	if d := time.Since(got.CreatedAt); d < -time.Second || d > time.Second || got.ExpiresAt.Sub(got.CreatedAt) != time.Hour ||
		got.IdleExpiresAt.Sub(got.CreatedAt) != 5*time.Second || fmt.Sprint(got.Audience) != "[https://api.example]" {
		t.Fatalf("family created by an instance %v behind: created %v ago, lifetimes %v and %v; want created on the store's clock, lifetimes kept",
			skew, d, got.IdleExpiresAt.Sub(got.CreatedAt), got.ExpiresAt.Sub(got.CreatedAt))
	}

	tk1 := tk0.succ(hash())
	r := store.RotateRequest{FamilyID: "f", Generation: 0, Old: tk0.hash, New: tk1.hash, Now: clockAhead(), Grace: 5 * time.Second}
	r.IdleExpiresAt = r.Now.Add(5 * time.Second)
	res, err := ahead.Rotate(ctx, r)
	if err != nil || res.Outcome != store.Rotated {
		t.Fatalf("rotation by the instance %v ahead: %v %v; want rotated (the family is active on the store's clock)", skew, res.Outcome, err)
	}
	if fmt.Sprint(res.Family.Audience) != "[https://api.example]" {
		t.Fatalf("audience %q after the rotation", res.Family.Audience)
	}
	if d := res.Family.IdleExpiresAt.Sub(res.Family.RotatedAt); d != 5*time.Second {
		t.Fatalf("idle expiry %v after the rotation, want 5s on the store's clock", d)
	}
	if d := time.Since(res.Family.RotatedAt); d < -time.Second || d > time.Second {
		t.Fatalf("rotated %v ago by the test's clock; want the store's clock", d)
	}

	r.Now = clockAhead()
	r.IdleExpiresAt = r.Now.Add(5 * time.Second)
	res, err = ahead.Rotate(ctx, r)
	if err != nil || res.Outcome != store.Repeated {
		t.Fatalf("retry within grace by the instance %v ahead: %v %v; want repeated", skew, res.Outcome, err)
	}

	r.Now, r.Grace = clockBehind(), time.Microsecond
	r.IdleExpiresAt = r.Now.Add(5 * time.Second)
	res, err = behind.Rotate(ctx, r)
	if err != nil || res.Outcome != store.ReuseDetected {
		t.Fatalf("retry after a 1µs grace by the instance %v behind: %v %v; want reuse", skew, res.Outcome, err)
	}
	clockCodes(t, behind, ahead, clockBehind, clockAhead)
}

// clockCodes is RunClock's part for authorization codes.
func clockCodes(t *testing.T, behind, ahead store.Store, clockBehind, clockAhead func() time.Time) {
	ctx := t.Context()
	code := func(s store.Store, now time.Time, ttl time.Duration) store.AuthorizationCode {
		t.Helper()
		c := store.AuthorizationCode{Hash: hash(), ClientID: "c", Subject: "alice", Resources: []string{"https://api.example"}, CreatedAt: now, ExpiresAt: now.Add(ttl)}
		must(t, s.CreateAuthorizationCode(ctx, c))
		return c
	}
	c := code(behind, clockBehind(), 5*time.Second)
	got, err := ahead.RedeemAuthorizationCode(ctx, c.Hash, codeFamily(c, "fc", clockAhead()))
	if err != nil {
		t.Fatalf("redemption by the instance %v ahead of a code valid 5 s: %v; want redeemed (on the store's clock)", skew, err)
	}
	if d := time.Since(got.RedeemedAt); d < -time.Second || d > time.Second || got.ExpiresAt.Sub(got.CreatedAt) != 5*time.Second {
		t.Fatalf("code redeemed %v ago by the test's clock, lifetime %v; want the store's clock, lifetime kept", d, got.ExpiresAt.Sub(got.CreatedAt))
	}
	if f, err := ahead.GetFamily(ctx, "fc"); err != nil || !f.CreatedAt.Equal(got.RedeemedAt) || fmt.Sprint(f.Audience) != "[https://api.example]" {
		t.Fatalf("the family of the redemption: %+v %v; want created when the code was redeemed", f, err)
	}
	c = code(ahead, clockAhead(), time.Microsecond)
	_, err = behind.RedeemAuthorizationCode(ctx, c.Hash, codeFamily(c, "fd", clockBehind()))
	wantErr(t, err, store.ErrExpired)
}
