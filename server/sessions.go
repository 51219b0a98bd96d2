package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/tokend/tokend/internal/oauth"

	"github.com/tokend/tokend/store"
)

// session is a family as the /v1 API shows it.
type session struct {
	ID         string    `json:"id"`
	ClientID   string    `json:"client_id"` // the client the login belongs to
	Subject    string    `json:"subject"`
	Scope      string    `json:"scope,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// sessionOwners returns the clients whose sessions the minting client c
// may see and revoke through the /v1 API: c itself, and each client of its
// MintFor that exists and is still public now (a MintFor entry whose
// client was deleted and created again as a confidential client grants
// nothing). Two backends that may both mint for one public client see
// each other's logins of it: the family records the client it belongs to,
// not the one that started it.
func (s *Server) sessionOwners(ctx context.Context, c store.Client) ([]string, error) {
	owners := []string{c.ID}
	for _, id := range c.MintFor {
		if id == c.ID || slices.Contains(owners, id) {
			continue
		}
		t, err := s.store.GetClient(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue
		case err != nil:
			return nil, fmt.Errorf("get client: %w", err)
		case len(t.SecretHash) == 0:
			owners = append(owners, id)
		}
	}
	return owners, nil
}

// handleListSessions lists the active sessions of a subject held by the
// calling client or by the public clients it may mint for (sessionOwners),
// oldest first within each client.
func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := s.authenticateMinter(ctx, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sub, err := pathID(r, "sub")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	owners, err := s.sessionOwners(ctx, c)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.now()
	var fams []store.Family
	for _, id := range owners {
		fs, err := s.store.ListFamilies(ctx, store.FamilyFilter{ClientID: id, Subject: sub, ActiveAt: now})
		if err != nil {
			s.writeError(w, r, fmt.Errorf("list families: %w", err))
			return
		}
		fams = append(fams, fs...)
	}
	out := make([]session, 0, len(fams))
	for _, f := range fams {
		out = append(out, session{ID: f.ID, ClientID: f.ClientID, Subject: f.Subject, Scope: f.Scope, CreatedAt: f.CreatedAt.UTC(), LastUsedAt: f.LastUsedAt.UTC(), ExpiresAt: f.End().UTC()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

// handleRevokeSubject logs a subject out everywhere: every session this
// client, or a public client it may mint for (sessionOwners), holds for
// it. Each client's sessions are revoked in one step; if one step fails,
// the sessions revoked before stay revoked and the request may be retried.
func (s *Server) handleRevokeSubject(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := s.authenticateMinter(ctx, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sub, err := pathID(r, "sub")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	owners, err := s.sessionOwners(ctx, c)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	n := 0
	for _, id := range owners {
		k, err := s.store.RevokeFamilies(ctx, store.FamilyFilter{ClientID: id, Subject: sub}, s.now(), "logout")
		n += k
		if err != nil {
			s.metrics.revoked.WithLabelValues("logout").Add(float64(n))
			s.writeError(w, r, fmt.Errorf("revoke families: %w", err))
			return
		}
	}
	s.metrics.revoked.WithLabelValues("logout").Add(float64(n))
	writeJSON(w, http.StatusOK, map[string]any{"revoked": n})
}

// handleRevokeSession revokes one session of the calling client or of a
// public client it may mint for (sessionOwners); anyone else's is 404, as
// if it did not exist.
func (s *Server) handleRevokeSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := s.authenticateMinter(ctx, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id, err := pathID(r, "id")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	owners, err := s.sessionOwners(ctx, c)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	notFound := &Error{Status: http.StatusNotFound, Code: oauth.NotFound, Description: "no such session"}
	f, err := s.store.GetFamily(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && !slices.Contains(owners, f.ClientID):
		s.writeError(w, r, notFound)
		return
	case err != nil:
		s.writeError(w, r, fmt.Errorf("get family: %w", err))
		return
	}
	if err := s.store.RevokeFamily(ctx, f.ID, s.now(), "logout"); err != nil {
		s.writeError(w, r, fmt.Errorf("revoke family: %w", err))
		return
	}
	s.metrics.revoked.WithLabelValues("logout").Inc()
	w.WriteHeader(http.StatusNoContent)
}
