package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Decide is the rule of Store.Rotate, written once for every backend: what
// a rotation of req does to the family f, judged at now (the store's
// clock). A backend reads f's record in the same atomic step as it writes
// the result (a row lock, a compare-and-set on f.Generation, a script),
// so that concurrent Rotates see each other's generation.
//
// The presented token is identified by req.Generation and req.Old:
//   - a generation ahead of f's, or f's own or the previous one with a hash
//     other than f.TokenHash or f.PreviousHash, is a token f never held:
//     ErrNotFound, as is a family of another client than req.ClientID;
//   - otherwise an ended family answers ErrRevoked or ErrExpired;
//   - the current token (generation f.Generation) is Rotated;
//   - the previous token, presented again within req.Grace of the rotation
//     that replaced it and asking for the same successor (req.New or one
//     of req.Alternates), which is still current, is Repeated (a retry
//     whose answer was lost, or a second tab);
//   - any other older token is ReuseDetected: it was rotated before, so
//     either its holder or whoever presented it now has a copy that must
//     not exist (RFC 6819 §5.2.2.3, OAuth 2.0 Security BCP §4.14.2).
//
// Older generations are not stored: the server has checked the token's MAC
// before asking, which proves it issued that family and generation.
func Decide(f Family, req RotateRequest, now time.Time) (Outcome, error) {
	switch {
	case req.ClientID != "" && !f.OwnedBy(req.ClientID),
		req.Generation > f.Generation || req.Generation < 0,
		req.Generation == f.Generation && !f.Current(req.Generation, req.Old),
		req.Generation == f.Generation-1 && !bytes.Equal(req.Old, f.PreviousHash):
		return 0, fmt.Errorf("store: refresh token: %w", ErrNotFound)
	case !f.RevokedAt.IsZero():
		return 0, fmt.Errorf("store: family %s: %w", f.ID, ErrRevoked)
	case !f.Active(now):
		return 0, fmt.Errorf("store: family %s: %w", f.ID, ErrExpired)
	case f.Current(req.Generation, req.Old):
		return Rotated, nil
	case req.Generation == f.Generation-1 && req.asks(f.TokenHash) && !now.After(f.RotatedAt.Add(req.Grace)):
		return Repeated, nil
	}
	return ReuseDetected, nil
}

// asks reports whether hash is req.New or one of req.Alternates.
func (req RotateRequest) asks(hash []byte) bool {
	return bytes.Equal(req.New, hash) || slices.ContainsFunc(req.Alternates, func(a []byte) bool { return bytes.Equal(a, hash) })
}

// After returns f as outcome o of req leaves it at now, for the backend to
// write: Rotated moves the generation on, makes New current and Old
// previous, and sets the idle expiry to now plus the idle time the caller
// asked for (req.IdleExpiresAt − req.Now), capped at ExpiresAt;
// ReuseDetected revokes f with ReasonReuse; Repeated changes nothing.
func After(f Family, req RotateRequest, o Outcome, now time.Time) Family {
	switch o {
	case Rotated:
		f.Generation++
		f.PreviousHash, f.TokenHash = bytes.Clone(req.Old), bytes.Clone(req.New)
		f.RotatedAt, f.LastUsedAt = now, now
		f = f.IdleUntil(now.Add(req.IdleExpiresAt.Sub(req.Now)))
	case ReuseDetected:
		f.RevokedAt, f.RevokeReason = now, ReasonReuse
	}
	return f
}

// Rebase returns f with CreatedAt moved to now and LastUsedAt,
// IdleExpiresAt and ExpiresAt (and RotatedAt and RevokedAt, if set) moved
// by the same amount: how a store with its own clock stores a family whose
// times the caller computed on another clock.
func (f Family) Rebase(now time.Time) Family {
	d := now.Sub(f.CreatedAt)
	f.CreatedAt = now
	f.LastUsedAt = f.LastUsedAt.Add(d)
	f.IdleExpiresAt = f.IdleExpiresAt.Add(d)
	f.ExpiresAt = f.ExpiresAt.Add(d)
	if !f.RotatedAt.IsZero() {
		f.RotatedAt = f.RotatedAt.Add(d)
	}
	if !f.RevokedAt.IsZero() {
		f.RevokedAt = f.RevokedAt.Add(d)
	}
	return f
}

// rotateAttempts bounds CompareAndRotate's rounds. A write fails only
// because another call changed the family since the read, and each such
// change moves the family on for good (after a lost rotation the presented
// token is no longer current; after a lost revocation the family is
// revoked), so three rounds always decide; the bound guards against a bug.
const rotateAttempts = 8

// CompareAndRotate is Store.Rotate for every backend: it reads the family,
// decides by Decide, and writes what After leaves of it, with read and
// write the backend's:
//   - read returns the family req names and the time to judge it at (the
//     store's clock, or req.Now for a store on one host); ErrNotFound (or an
//     error wrapping it) for none.
//   - write stores next, what outcome o (Rotated or ReuseDetected) leaves
//     of f, only if the record still is f: the same generation and token
//     hash, and unrevoked. It returns the family as stored (a backend may
//     round its times) and whether it wrote.
//
// When write did not (another call changed the family in between),
// CompareAndRotate reads and decides again; after rotateAttempts rounds it
// fails with an error wrapping ErrConflict and ErrUnavailable, having
// changed nothing. A backend that holds a lock from read to write passes
// a write that always writes. Repeated and the errors of Decide write
// nothing; ErrRevoked and ErrExpired come with the family as read.
func CompareAndRotate(ctx context.Context, req RotateRequest,
	read func(ctx context.Context) (Family, time.Time, error),
	write func(ctx context.Context, f, next Family, o Outcome) (Family, bool, error)) (RotateResult, error) {
	for range rotateAttempts {
		f, now, err := read(ctx)
		if err != nil {
			return RotateResult{}, err
		}
		o, err := Decide(f, req, now)
		switch {
		case errors.Is(err, ErrNotFound):
			return RotateResult{}, err
		case err != nil:
			return RotateResult{Family: f}, err
		case o == Repeated:
			return RotateResult{Outcome: o, Family: f}, nil
		}
		stored, ok, err := write(ctx, f, After(f, req, o, now), o)
		if err != nil {
			return RotateResult{}, err
		}
		if ok {
			return RotateResult{Outcome: o, Family: stored}, nil
		}
	}
	return RotateResult{}, fmt.Errorf("store: rotate family %s: changed concurrently %d times: %w: %w", req.FamilyID, rotateAttempts, ErrConflict, ErrUnavailable)
}
