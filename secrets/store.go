package secrets

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tokend/tokend/store"
)

// Load returns the ring st holds. A store that holds none gets a ring of
// one new random secret first, stored as its raw bytes (store.Store.Secret:
// of servers starting together on one store, the first one's secret
// wins).
func Load(ctx context.Context, st store.Store) (Ring, error) {
	fresh := make([]byte, Size)
	_, _ = rand.Read(fresh) // never fails (crypto/rand)
	v, err := st.Secret(ctx, Name, fresh)
	clear(fresh)
	if err != nil {
		return nil, fmt.Errorf("secrets: load: %w", err)
	}
	r, err := Parse(v)
	if err != nil {
		return nil, fmt.Errorf("secrets: load: the stored secret %q: %w", Name, err)
	}
	return r, nil
}

// Rotate adds a new random secret to st's ring that takes over lead after
// now (two reload intervals of the servers plus their clock skew, see the
// package doc), in one atomic store.Store.RewriteSecrets, and returns it. It
// returns an error wrapping ErrPending if the previous rotation has not
// taken over yet, ErrFull if the ring already holds MaxSecrets.
func Rotate(ctx context.Context, st store.Store, now time.Time, lead time.Duration) (Secret, error) {
	if lead < 0 {
		return Secret{}, fmt.Errorf("secrets: rotate: negative lead %v", lead)
	}
	if _, err := Load(ctx, st); err != nil { // a store that never served has none yet
		return Secret{}, err
	}
	var added Secret
	err := edit(ctx, st, func(r Ring) (Ring, error) {
		if next, ok := r.Next(now); ok {
			return nil, fmt.Errorf("%w: secret %d takes over at %s", ErrPending, next.Seq, next.ActiveFrom.UTC().Format(time.RFC3339))
		}
		if len(r) >= MaxSecrets {
			return nil, fmt.Errorf("%w: %d secrets; retire the old ones first", ErrFull, len(r))
		}
		v := make([]byte, Size)
		_, _ = rand.Read(v)
		added = Secret{Seq: r[len(r)-1].Seq + 1, Value: v, CreatedAt: now, ActiveFrom: now.Add(lead)}
		return append(slices.Clone(r), added), nil
	})
	if err != nil {
		return Secret{}, fmt.Errorf("secrets: rotate: %w", err)
	}
	return added, nil
}

// Retirement is what Retire did.
type Retirement struct {
	Retired []int // the Seq of each secret removed
	Current int   // the Seq of the secret that tags
	// Cutoff is the current secret's ActiveFrom plus the skew: the
	// families last issued a refresh token before it were ended.
	Cutoff time.Time
	// Ended is how many families Retire ended (revoked with ReasonRetired).
	Ended int
}

// Retire ends the families that still depend on a secret older than the
// current one (see Dependents), then removes those secrets from st's ring
// in one atomic store.Store.RewriteSecrets. It returns an error wrapping
// ErrNothingToRetire if there is no older secret, and ErrTooSoon before
// the current secret has tagged for skew (how far apart the servers'
// clocks and the store's may be; DefaultSkew unless known better).
//
// Families end one at a time; a failure stops Retire before it changes the
// ring, with Ended saying how many it had ended. Running it again ends
// the rest: a family already ended is not counted twice.
func Retire(ctx context.Context, st store.Store, now time.Time, skew time.Duration) (Retirement, error) {
	r, err := Load(ctx, st)
	if err != nil {
		return Retirement{}, err
	}
	cur := r.Current(now)
	ret := Retirement{Current: cur.Seq, Cutoff: cur.ActiveFrom.Add(skew)}
	for _, s := range r {
		if s.Seq < cur.Seq {
			ret.Retired = append(ret.Retired, s.Seq)
		}
	}
	switch {
	case len(ret.Retired) == 0:
		return Retirement{}, fmt.Errorf("%w: secret %d is the oldest", ErrNothingToRetire, cur.Seq)
	case now.Before(ret.Cutoff):
		return Retirement{}, fmt.Errorf("%w: secret %d took over at %s; retire from %s on", ErrTooSoon, cur.Seq,
			cur.ActiveFrom.UTC().Format(time.RFC3339), ret.Cutoff.UTC().Format(time.RFC3339))
	}
	fams, err := dependents(ctx, st, ret.Cutoff, now)
	if err != nil {
		return ret, fmt.Errorf("secrets: retire: %w", err)
	}
	for _, f := range fams {
		// Read again: a family refreshed since the listing has moved to
		// the current secret and keeps going.
		f, err := st.GetFamily(ctx, f.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return ret, fmt.Errorf("secrets: retire: %w", err)
		}
		if !f.Active(now) || !issued(f).Before(ret.Cutoff) {
			continue
		}
		err = st.RevokeFamily(ctx, f.ID, now, ReasonRetired)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return ret, fmt.Errorf("secrets: retire: %w", err)
		}
		ret.Ended++
	}
	err = edit(ctx, st, func(r Ring) (Ring, error) {
		return slices.DeleteFunc(slices.Clone(r), func(s Secret) bool { return s.Seq < cur.Seq }), nil
	})
	if err != nil {
		return ret, fmt.Errorf("secrets: retire: %w", err)
	}
	return ret, nil
}

// Dependents returns how many families active at now Retire would end: those
// whose current refresh token was issued (the family's last rotation, or
// its start) before cutoff, r.Current(now)'s ActiveFrom plus skew, and so
// is tagged under an older secret. A family whose current token is of the
// format before tags (store.LegacyTokens) depends on no secret and is not
// counted. It returns 0 if r has no secret older than the current one.
func Dependents(ctx context.Context, st store.Store, r Ring, now time.Time, skew time.Duration) (n int, cutoff time.Time, err error) {
	cur := r.Current(now)
	if r[0].Seq == cur.Seq {
		return 0, time.Time{}, nil
	}
	cutoff = cur.ActiveFrom.Add(skew)
	fams, err := dependents(ctx, st, cutoff, now)
	if err != nil {
		return 0, cutoff, fmt.Errorf("secrets: %w", err)
	}
	return len(fams), cutoff, nil
}

// dependents lists the families active at now whose current token was
// issued before cutoff, but for those whose current token is a legacy one.
func dependents(ctx context.Context, st store.Store, cutoff, now time.Time) ([]store.Family, error) {
	all, err := st.ListFamilies(ctx, store.FamilyFilter{ActiveAt: now})
	if err != nil {
		return nil, err
	}
	legacy, _ := store.Capability[store.LegacyTokens](st)
	var out []store.Family
	for _, f := range all {
		if !issued(f).Before(cutoff) {
			continue
		}
		if legacy != nil {
			_, _, err := legacy.LegacyToken(ctx, f.TokenHash)
			if err == nil {
				continue
			}
			if !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// issued is when f's current refresh token was issued.
func issued(f store.Family) time.Time {
	if f.Generation > 0 {
		return f.RotatedAt
	}
	return f.CreatedAt
}

// edit passes st's ring through fn in one store.Store.RewriteSecrets,
// leaving every other value as it is.
func edit(ctx context.Context, st store.Store, fn func(Ring) (Ring, error)) error {
	found := false
	err := st.RewriteSecrets(ctx, func(kind, name string, v []byte) ([]byte, error) {
		if kind != store.KindSecret || name != Name {
			return v, nil
		}
		found = true
		r, err := Parse(v)
		if err != nil {
			return nil, err
		}
		if r, err = fn(r); err != nil {
			return nil, err
		}
		return r.MarshalBinary()
	})
	if err == nil && !found {
		err = fmt.Errorf("secrets: the store holds no secret %q", Name)
	}
	return err
}
