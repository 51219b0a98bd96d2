package server

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tokend/tokend/internal/oauth"

	"github.com/tokend/tokend/store"
)

// session is a family as the /v1 API shows it.
type session struct {
	ID         string    `json:"id"`
	Subject    string    `json:"subject"`
	Scope      string    `json:"scope,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := s.authenticateMinter(ctx, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.now()
	fams, err := s.store.ListFamilies(ctx, store.FamilyFilter{ClientID: c.ID, Subject: r.PathValue("sub"), ActiveAt: now})
	if err != nil {
		s.writeError(w, r, fmt.Errorf("list families: %w", err))
		return
	}
	out := make([]session, 0, len(fams))
	for _, f := range fams {
		exp := f.ExpiresAt
		if f.IdleExpiresAt.Before(exp) {
			exp = f.IdleExpiresAt
		}
		out = append(out, session{ID: f.ID, Subject: f.Subject, Scope: f.Scope, CreatedAt: f.CreatedAt.UTC(), LastUsedAt: f.LastUsedAt.UTC(), ExpiresAt: exp.UTC()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

// handleRevokeSubject logs a subject out everywhere: every session this
// client holds for it.
func (s *Server) handleRevokeSubject(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := s.authenticateMinter(ctx, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	n, err := s.store.RevokeFamilies(ctx, store.FamilyFilter{ClientID: c.ID, Subject: r.PathValue("sub")}, s.now(), "logout")
	if err != nil {
		s.writeError(w, r, fmt.Errorf("revoke families: %w", err))
		return
	}
	s.metrics.revoked.WithLabelValues("logout").Add(float64(n))
	writeJSON(w, http.StatusOK, map[string]any{"revoked": n})
}

func (s *Server) handleRevokeSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := s.authenticateMinter(ctx, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	notFound := &Error{Status: http.StatusNotFound, Code: oauth.NotFound, Description: "no such session"}
	f, err := s.store.GetFamily(ctx, r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && f.ClientID != c.ID:
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
