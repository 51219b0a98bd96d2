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

// listedFamily is a family as the /v1 API shows it: one element of the
// "sessions" array of GET /v1/subjects/{sub}/sessions (the /v1 paths and
// fields say session; each names a family).
type listedFamily struct {
	ID         string    `json:"id"`
	ClientID   string    `json:"client_id"` // the client the family belongs to
	Subject    string    `json:"subject"`
	Scope      string    `json:"scope,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// familyOwners returns the clients whose families the minting client c
// may see and revoke through the /v1 API: c itself, and each client of its
// MintFor that exists and is still public now (a MintFor entry whose
// client was deleted and created again as a confidential client grants
// nothing). Two backends that may both mint for one public client see
// each other's families of it: the family records the client it belongs to,
// not the one that started it.
func (s *Server) familyOwners(ctx context.Context, c store.Client) ([]string, error) {
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

// familiesRequest authenticates the minting client of a request to the
// /v1 sessions endpoints (which list and end families) and reads its path
// parameter param: its value, and the clients whose families the request
// may touch (familyOwners).
func (s *Server) familiesRequest(r *http.Request, param string) (string, []string, error) {
	ctx := r.Context()
	c, err := s.authenticateMinter(ctx, r)
	if err != nil {
		return "", nil, err
	}
	v, err := pathID(r, param)
	if err != nil {
		return "", nil, err
	}
	owners, err := s.familyOwners(ctx, c)
	if err != nil {
		return "", nil, err
	}
	return v, owners, nil
}

// handleListFamilies lists the active families of a subject held by the
// calling client or by the public clients it may mint for (familyOwners),
// oldest first within each client.
func (s *Server) handleListFamilies(w http.ResponseWriter, r *http.Request) {
	out, err := s.listFamilies(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func (s *Server) listFamilies(r *http.Request) ([]listedFamily, error) {
	sub, owners, err := s.familiesRequest(r, "sub")
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := []listedFamily{}
	for _, id := range owners {
		fs, err := s.store.ListFamilies(r.Context(), store.FamilyFilter{ClientID: id, Subject: sub, ActiveAt: now})
		if err != nil {
			return nil, fmt.Errorf("list families: %w", err)
		}
		for _, f := range fs {
			out = append(out, listedFamily{ID: f.ID, ClientID: f.ClientID, Subject: f.Subject, Scope: f.Scope, CreatedAt: f.CreatedAt.UTC(), LastUsedAt: f.LastUsedAt.UTC(), ExpiresAt: f.End().UTC()})
		}
	}
	return out, nil
}

// handleRevokeSubject logs a subject out everywhere: every family this
// client, or a public client it may mint for (familyOwners), holds for
// it. Each client's families are revoked in one step; if one step fails,
// the families revoked before stay revoked and the request may be retried.
func (s *Server) handleRevokeSubject(w http.ResponseWriter, r *http.Request) {
	n, err := s.revokeSubject(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"revoked": n})
}

func (s *Server) revokeSubject(r *http.Request) (int, error) {
	sub, owners, err := s.familiesRequest(r, "sub")
	if err != nil {
		return 0, err
	}
	n := 0
	defer func() { s.metrics.revoked.WithLabelValues("logout").Add(float64(n)) }()
	for _, id := range owners {
		k, err := s.store.RevokeFamilies(r.Context(), store.FamilyFilter{ClientID: id, Subject: sub}, s.now(), "logout")
		n += k
		if err != nil {
			return 0, fmt.Errorf("revoke families: %w", err)
		}
	}
	return n, nil
}

// handleRevokeFamily (DELETE /v1/sessions/{id}) revokes one family of the
// calling client or of a public client it may mint for (familyOwners);
// anyone else's is 404, as if it did not exist. Its error_description
// says "no such session", the word of the /v1 paths.
func (s *Server) handleRevokeFamily(w http.ResponseWriter, r *http.Request) {
	if err := s.revokeFamilyByID(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) revokeFamilyByID(r *http.Request) error {
	id, owners, err := s.familiesRequest(r, "id")
	if err != nil {
		return err
	}
	f, err := s.store.GetFamily(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && !slices.Contains(owners, f.ClientID):
		return &Error{Status: http.StatusNotFound, Code: oauth.NotFound, Description: "no such session"}
	case err != nil:
		return fmt.Errorf("get family: %w", err)
	}
	if err := s.store.RevokeFamily(r.Context(), f.ID, s.now(), "logout"); err != nil {
		return fmt.Errorf("revoke family: %w", err)
	}
	s.metrics.revoked.WithLabelValues("logout").Inc()
	return nil
}
