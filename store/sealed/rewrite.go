package sealed

import (
	"cmp"
	"context"
	"encoding/hex"
	"slices"

	"github.com/tokend/tokend/store"
)

// Record describes how one value was found in the store.
type Record struct {
	Kind string // store.KindKey or store.KindSecret
	Name string // the kid, or the secret's name
	// KeyID is the ID of the operator key the value was sealed under, or
	// "" if it was in clear.
	KeyID string
}

// Seal seals every value of st under ring.Current in one atomic
// store.Store.RewriteSecrets: values in clear are sealed, values sealed
// under a key of ring.Old are opened and resealed (a rotation), values
// already sealed under ring.Current stay as they are. A value sealed under
// a key not in the ring (ErrUnknownKey) or that does not open
// (ErrTampered) fails the whole call, and nothing changes. Returns
// ErrNoKey if ring.Current is nil.
//
// st is the store itself, not a Store wrapping it (if it is one, the store
// under it is used). Seal returns the values as it found them, sorted by
// kind and name.
func Seal(ctx context.Context, st store.Store, ring Keyring) ([]Record, error) {
	if ring.Current == nil {
		return nil, ErrNoKey
	}
	return rewrite(ctx, st, func(kind, name string, v []byte) ([]byte, error) {
		if id, sealed := keyID(v); sealed && string(id) == string(ring.Current.id[:]) {
			// Opened all the same: a value that would not open is not
			// left behind as if it were sealed.
			if _, err := ring.open(kind, name, v); err != nil {
				return nil, err
			}
			return v, nil
		}
		p, err := (Keyring{Old: ring.keys()}).open(kind, name, v)
		if err != nil {
			return nil, err
		}
		defer clear(p)
		return ring.seal(kind, name, p), nil
	})
}

// Unseal stores every value of st in clear, in one atomic
// store.Store.RewriteSecrets: values sealed under any key of ring are
// opened, values in clear stay as they are. A value sealed under a key not
// in the ring or that does not open fails the whole call, and nothing
// changes. Like Seal, it takes the store itself and returns the values as
// it found them.
func Unseal(ctx context.Context, st store.Store, ring Keyring) ([]Record, error) {
	open := Keyring{Old: ring.keys()} // no Current: values in clear are fine
	return rewrite(ctx, st, func(kind, name string, v []byte) ([]byte, error) {
		return open.open(kind, name, v)
	})
}

// Inspect reports how every value of st is stored, sorted by kind and
// name. The store has no other way to list its secrets, so Inspect runs a
// store.Store.RewriteSecrets that stores every value as it was: the
// content of the store does not change.
func Inspect(ctx context.Context, st store.Store) ([]Record, error) {
	return rewrite(ctx, st, func(_, _ string, v []byte) ([]byte, error) { return v, nil })
}

func rewrite(ctx context.Context, st store.Store, fn func(kind, name string, v []byte) ([]byte, error)) ([]Record, error) {
	var recs []Record
	err := unwrap(st).RewriteSecrets(ctx, func(kind, name string, v []byte) ([]byte, error) {
		recs = append(recs, record(kind, name, v))
		return fn(kind, name, v)
	})
	if err != nil {
		return nil, err
	}
	sortRecords(recs)
	return recs, nil
}

func record(kind, name string, v []byte) Record {
	r := Record{Kind: kind, Name: name}
	if id, sealed := keyID(v); sealed {
		r.KeyID = hex.EncodeToString(id)
	}
	return r
}

func sortRecords(recs []Record) {
	slices.SortFunc(recs, func(a, b Record) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
}
