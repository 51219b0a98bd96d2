// Package memory is an in-memory store.Store: for tests, for trying tokend
// out (`tokend serve --store memory:`), and as the reference the other
// backends are checked against. Nothing survives a restart.
package memory

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tokend/tokend/store"
)

// Store keeps everything in maps behind one mutex. Values are copied in and
// out, so callers never share memory with it.
type Store struct {
	mu       sync.Mutex
	clients  map[string]store.Client
	users    map[string]store.User
	keys     []store.Key
	families map[string]store.Family
	secrets  map[string][]byte
	denied   map[string]time.Time               // revoked access tokens: jti → exp
	codes    map[string]store.AuthorizationCode // by string(Hash)
	sessions map[string]store.Session
	consents map[consentKey]store.Consent
}

// consentKey is a consent's key: its subject and client.
type consentKey struct{ subject, client string }

var _ store.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{
		clients:  map[string]store.Client{},
		users:    map[string]store.User{},
		families: map[string]store.Family{},
		secrets:  map[string][]byte{},
		denied:   map[string]time.Time{},
		codes:    map[string]store.AuthorizationCode{},
		sessions: map[string]store.Session{},
		consents: map[consentKey]store.Consent{},
	}
}

func cloneClient(c store.Client) store.Client {
	c.SecretHash = bytes.Clone(c.SecretHash)
	c.Grants = slices.Clone(c.Grants)
	c.Scopes = slices.Clone(c.Scopes)
	c.MintFor = slices.Clone(c.MintFor)
	c.Origins = slices.Clone(c.Origins)
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	c.Resources = slices.Clone(c.Resources)
	c.PreviousSecretHash = bytes.Clone(c.PreviousSecretHash)
	return c
}

func cloneKey(k store.Key) store.Key {
	k.Private = bytes.Clone(k.Private)
	return k
}

func cloneFamily(f store.Family) store.Family {
	f.Claims = bytes.Clone(f.Claims)
	f.TokenHash = bytes.Clone(f.TokenHash)
	f.PreviousHash = bytes.Clone(f.PreviousHash)
	f.Audience = slices.Clone(f.Audience)
	return f
}

// CreateClient implements store.Store.
func (s *Store) CreateClient(_ context.Context, c store.Client) error {
	if err := store.CheckClient(c); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[c.ID]; ok {
		return fmt.Errorf("client %q: %w", c.ID, store.ErrExists)
	}
	s.clients[c.ID] = cloneClient(c)
	return nil
}

// GetClient implements store.Store.
func (s *Store) GetClient(_ context.Context, id string) (store.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return store.Client{}, fmt.Errorf("client %q: %w", id, store.ErrNotFound)
	}
	return cloneClient(c), nil
}

// ListClients implements store.Store.
func (s *Store) ListClients(context.Context) ([]store.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.Client, 0, len(s.clients))
	for _, c := range s.clients {
		out = append(out, cloneClient(c))
	}
	slices.SortFunc(out, func(a, b store.Client) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// DeleteClient implements store.Store.
func (s *Store) DeleteClient(_ context.Context, id string, at time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[id]; !ok {
		return 0, fmt.Errorf("client %q: %w", id, store.ErrNotFound)
	}
	delete(s.clients, id)
	for k := range s.consents {
		if k.client == id {
			delete(s.consents, k)
		}
	}
	for h, c := range s.codes {
		if c.ClientID == id && c.RedeemedAt.IsZero() {
			delete(s.codes, h)
		}
	}
	return s.revokeLocked(store.FamilyFilter{ClientID: id}, at, store.ReasonClientDeleted), nil
}

// CreateUser implements store.Store.
func (s *Store) CreateUser(_ context.Context, u store.User) error {
	if err := store.CheckID(u.Name); err != nil {
		return fmt.Errorf("memory: user name: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[u.Name]; ok {
		return fmt.Errorf("user %q: %w", u.Name, store.ErrExists)
	}
	s.users[u.Name] = u
	return nil
}

// GetUser implements store.Store.
func (s *Store) GetUser(_ context.Context, name string) (store.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[name]
	if !ok {
		return store.User{}, fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	return u, nil
}

// ListUsers implements store.Store.
func (s *Store) ListUsers(context.Context) ([]store.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b store.User) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// UpdatePasswordHash implements store.Store.
func (s *Store) UpdatePasswordHash(_ context.Context, name, oldHash, newHash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[name]
	if !ok {
		return fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	if u.PasswordHash != oldHash {
		return fmt.Errorf("user %q: %w", name, store.ErrConflict)
	}
	u.PasswordHash = newHash
	s.users[name] = u
	return nil
}

// DeleteUser implements store.Store.
func (s *Store) DeleteUser(_ context.Context, name string, at time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[name]; !ok {
		return 0, fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	delete(s.users, name)
	for k := range s.consents {
		if k.subject == name {
			delete(s.consents, k)
		}
	}
	for id, sess := range s.sessions {
		if sess.Subject == name && sess.EndedAt.IsZero() {
			sess.EndedAt = at
			s.sessions[id] = sess
		}
	}
	return s.revokeLocked(store.FamilyFilter{Subject: name}, at, store.ReasonUserDeleted), nil
}

// CreateKey implements store.Store.
func (s *Store) CreateKey(_ context.Context, k store.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createKeyLocked(k)
}

// createKeyLocked is CreateKey; s.mu is held.
func (s *Store) createKeyLocked(k store.Key) error {
	for _, old := range s.keys {
		if old.ID == k.ID {
			return fmt.Errorf("key %q: %w", k.ID, store.ErrExists)
		}
	}
	s.keys = append(s.keys, cloneKey(k))
	return nil
}

// CreateKeyIfNone implements store.Store under the store's mutex.
func (s *Store) CreateKeyIfNone(_ context.Context, k store.Key) (store.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.activeKeyLocked(k.Use); i >= 0 {
		return cloneKey(s.keys[i]), nil
	}
	if err := s.createKeyLocked(k); err != nil {
		return store.Key{}, err
	}
	return cloneKey(k), nil
}

// RotateKey implements store.Store.
func (s *Store) RotateKey(_ context.Context, k store.Key, prev string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	newest := ""
	if i := s.activeKeyLocked(k.Use); i >= 0 {
		newest = s.keys[i].ID
	}
	if newest != prev {
		return fmt.Errorf("memory: rotate key: the newest active key is %q, not %q: %w", newest, prev, store.ErrConflict)
	}
	if err := s.createKeyLocked(k); err != nil {
		return err
	}
	for i := range s.keys[:len(s.keys)-1] {
		if s.keys[i].Use == k.Use && s.keys[i].RetiredAt.IsZero() && s.keys[i].RevokedAt.IsZero() {
			s.keys[i].RetiredAt = k.NotBefore
		}
	}
	return nil
}

// activeKeyLocked returns the index of the newest key of use that is
// neither retired nor revoked, or -1; s.mu is held.
func (s *Store) activeKeyLocked(use string) int {
	for i := len(s.keys) - 1; i >= 0; i-- {
		if k := s.keys[i]; k.Use == use && k.RetiredAt.IsZero() && k.RevokedAt.IsZero() {
			return i
		}
	}
	return -1
}

// ListKeys implements store.Store.
func (s *Store) ListKeys(context.Context) ([]store.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.Key, len(s.keys))
	for i, k := range s.keys {
		out[i] = cloneKey(k)
	}
	return out, nil
}

// RetireKey implements store.Store.
func (s *Store) RetireKey(_ context.Context, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.keys {
		if s.keys[i].ID == id {
			if s.keys[i].RetiredAt.IsZero() {
				s.keys[i].RetiredAt = at
			}
			return nil
		}
	}
	return fmt.Errorf("key %q: %w", id, store.ErrNotFound)
}

// RevokeKey implements store.Store.
func (s *Store) RevokeKey(_ context.Context, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.keys {
		if s.keys[i].ID == id {
			if s.keys[i].RevokedAt.IsZero() {
				s.keys[i].RevokedAt = at
				if s.keys[i].RetiredAt.IsZero() {
					s.keys[i].RetiredAt = at
				}
			}
			return nil
		}
	}
	return fmt.Errorf("key %q: %w", id, store.ErrNotFound)
}

// RevokeAccessToken implements store.Store.
func (s *Store) RevokeAccessToken(_ context.Context, jti string, expiresAt time.Time) error {
	if err := store.CheckID(jti); err != nil {
		return fmt.Errorf("memory: jti: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.denied[jti]; !ok || expiresAt.After(old) {
		s.denied[jti] = expiresAt
	}
	return nil
}

// AccessTokenRevoked implements store.Store.
func (s *Store) AccessTokenRevoked(_ context.Context, jti string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.denied[jti]
	return ok, nil
}

// RewriteSecrets implements store.Store: every value is computed before
// any is stored, so a failing fn changes nothing.
func (s *Store) RewriteSecrets(_ context.Context, fn func(kind, name string, value []byte) ([]byte, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([][]byte, len(s.keys))
	for i, k := range s.keys {
		v, err := fn(store.KindKey, k.ID, bytes.Clone(k.Private))
		if err != nil {
			return err
		}
		keys[i] = bytes.Clone(v)
	}
	secrets := make(map[string][]byte, len(s.secrets))
	for name, old := range s.secrets {
		v, err := fn(store.KindSecret, name, bytes.Clone(old))
		if err != nil {
			return err
		}
		secrets[name] = bytes.Clone(v)
	}
	for i := range s.keys {
		s.keys[i].Private = keys[i]
	}
	s.secrets = secrets
	return nil
}

// Secret implements store.Store.
func (s *Store) Secret(_ context.Context, name string, value []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.secrets[name]; ok {
		return bytes.Clone(v), nil
	}
	s.secrets[name] = bytes.Clone(value)
	return bytes.Clone(value), nil
}

// Ping implements store.Store.
func (s *Store) Ping(context.Context) error { return nil }

// Close implements store.Store.
func (s *Store) Close() error { return nil }

// UpdateClient implements store.Store.
func (s *Store) UpdateClient(_ context.Context, prev, next store.Client) error {
	if err := store.CheckUpdate(prev, next); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[prev.ID]
	if !ok {
		return fmt.Errorf("client %q: %w", prev.ID, store.ErrNotFound)
	}
	if !c.Equal(prev) {
		return fmt.Errorf("client %q: %w", prev.ID, store.ErrConflict)
	}
	s.clients[prev.ID] = cloneClient(next)
	return nil
}
