package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tokend/tokend/internal/oauth"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/verify"
)

// mintRequest is the body of POST /v1/tokens.
type mintRequest struct {
	Subject string          `json:"subject"`
	Scope   string          `json:"scope"`
	TTL     int64           `json:"ttl"` // access-token lifetime in seconds; 0: the server's
	Claims  json.RawMessage `json:"claims"`
	Force   bool            `json:"force"`
	// ClientID, if set, names the public client the family is for (one of
	// the minting client's MintFor); empty: the minting client itself.
	ClientID string `json:"client_id"`
}

// mintResponse is a token pair plus the ID of the family it starts
// (session_id on the wire).
type mintResponse struct {
	tokenResponse
	FamilyID string `json:"session_id"`
}

// MaxAccessTTL is the longest lifetime of an access token, 24 hours:
// Config.AccessTTL and a mint's "ttl" may be at most this long.
const MaxAccessTTL = maxTTLSeconds * time.Second

const maxTTLSeconds = 86400

// ttlType says what a mint's "ttl" must be.
var ttlType = "a whole number of seconds from 0 to " + strconv.Itoa(maxTTLSeconds)

// authenticateMinter checks Basic client authentication for the /v1 API
// and that the client may mint.
func (s *Server) authenticateMinter(ctx context.Context, r *http.Request) (store.Client, error) {
	if _, _, ok := r.BasicAuth(); !ok {
		return store.Client{}, errInvalidClient(true)
	}
	c, confidential, err := s.authenticateClient(ctx, r, nil)
	if err != nil {
		return store.Client{}, err
	}
	if !confidential || !c.Mint {
		return store.Client{}, &Error{Status: http.StatusForbidden, Code: oauth.UnauthorizedClient, Description: "client may not mint tokens"}
	}
	return c, nil
}

// handleMint lets a trusted backend issue a token pair for one of its
// users. The rule for repeated mints:
//
//   - A mint for a public client (client_id naming one of the minting
//     client's MintFor) always starts a new family and returns its
//     refresh token: the page it is for refreshes on its own, so every page
//     load may mint, and a reload never leaves a page without a refresh
//     token.
//   - A mint by a confidential client for itself starts a new family when
//     it has force, or when no matching one is cached; without force, a
//     repeat for the same subject, scope, TTL and claims within the first
//     half of the access token's life returns the same access token again,
//     with the same session_id but no refresh_token, and only while
//     introspection would still call that token active (mintCache). A
//     refresh-token family is never handed to two callers (two devices
//     sharing one family would log each other out through reuse
//     detection): a caller that needs a refresh token for each device
//     sets force.
func (s *Server) handleMint(w http.ResponseWriter, r *http.Request) {
	resp, err := s.mint(r.Context(), r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp.stamp(s.now())
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) mint(ctx context.Context, r *http.Request) (*mintResponse, error) {
	c, err := s.authenticateMinter(ctx, r)
	if err != nil {
		return nil, err
	}
	req, err := readMintRequest(r)
	if err != nil {
		return nil, err
	}
	target, err := s.mintTarget(ctx, c, req.ClientID)
	if err != nil {
		return nil, err
	}
	scope := req.Scope
	if scope != "" {
		parts, ok := parseScope(scope)
		if !ok {
			return nil, errMalformedScope("field")
		}
		for _, p := range parts {
			if !c.AllowsScope(p) {
				return nil, &Error{Status: 400, Code: oauth.InvalidScope, Description: "scope not allowed for this client"}
			}
			if !target.AllowsScope(p) {
				return nil, &Error{Status: 400, Code: oauth.InvalidScope, Description: `scope not allowed for the client named by field "client_id"`}
			}
		}
		scope = strings.Join(dedupe(parts), " ")
	}
	ttl := time.Duration(req.TTL) * time.Second
	// Only a confidential client's mint for itself is de-duplicated: see
	// handleMint.
	reuse := target.ID == c.ID
	key := mintKey(c.ID, req.Subject, scope, ttl, req.Claims)
	now := s.now()
	if reuse && !req.Force {
		out, err := s.mintAgain(ctx, key, now)
		if out != nil || err != nil {
			return out, err
		}
	}
	resp, fam, err := s.startFamily(ctx, issueRequest{client: target, subject: req.Subject, scope: scope, grant: "mint", claims: req.Claims, ttl: ttl})
	if err != nil {
		return nil, err
	}
	out := &mintResponse{tokenResponse: *resp, FamilyID: fam}
	if reuse {
		cached := *out
		cached.RefreshToken = "" // never handed to a second caller, never kept
		// Reuse an access token only during the first half of its life.
		s.minted.put(key, mintEntry{resp: &cached, until: now.Add(resp.expires.Sub(now) / 2),
			kid: verify.KeyID(resp.AccessToken)}, now)
	}
	return out, nil
}

// mintAgain returns the cached answer of key, without its refresh token,
// if introspection would call its access token active now: the family it
// belongs to is active (a revocation, or deleting its client or user,
// ends it) and the key that signed it may still be accepted
// (KeyChecker.Check, which reads the store). Otherwise it forgets the
// entry and returns nil, and the caller starts a new family. The caller
// has checked the request against the minting client as the store holds
// it now (its secret, Mint, Scopes). The error is the store's, when it
// cannot tell.
func (s *Server) mintAgain(ctx context.Context, key string, now time.Time) (*mintResponse, error) {
	hit, ok := s.minted.get(key, now)
	if !ok {
		return nil, nil
	}
	f, err := s.store.GetFamily(ctx, hit.resp.FamilyID)
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && !f.Active(now):
		s.minted.drop(key)
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get minted family: %w", err)
	}
	if kc, ok := s.cfg.Signer.(KeyChecker); ok {
		switch err := kc.Check(ctx, hit.kid, now); {
		case errors.Is(err, keys.ErrRevoked), errors.Is(err, keys.ErrUnknownKey):
			s.minted.drop(key)
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("check the minted token's key: %w", err)
		}
	}
	out := *hit.resp // the access token alone: see mintCache
	out.stamp(now)
	return &out, nil
}

// mintTarget returns the client a mint by c is for: c itself when id is
// empty or c's own ID, else the public client id names. Refused with 403
// unauthorized_client if id is not in c.MintFor, or names a confidential
// client or one without the refresh_token grant (its family could never be
// refreshed); with 400 invalid_request if it names no client. MintFor is
// checked first, so that a caller learns nothing about clients it may
// not mint for.
func (s *Server) mintTarget(ctx context.Context, c store.Client, id string) (store.Client, error) {
	if id == "" || id == c.ID {
		return c, nil
	}
	if !slices.Contains(c.MintFor, id) {
		return store.Client{}, &Error{Status: http.StatusForbidden, Code: oauth.UnauthorizedClient,
			Description: `field "client_id": this client may not mint for client ` + quoteParam(id) + ` (not in its mint-for list)`}
	}
	t, err := s.store.GetClient(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Client{}, errInvalidRequest(`field "client_id" names no registered client`)
	case err != nil:
		return store.Client{}, fmt.Errorf("get mint target: %w", err)
	case len(t.SecretHash) > 0:
		return store.Client{}, &Error{Status: http.StatusForbidden, Code: oauth.UnauthorizedClient,
			Description: `field "client_id" must name a public client; a confidential client mints for itself`}
	case !allowsGrant(t, grantRefreshToken):
		return store.Client{}, &Error{Status: http.StatusForbidden, Code: oauth.UnauthorizedClient,
			Description: `field "client_id" names a public client without the refresh_token grant`}
	}
	return t, nil
}

// readMintRequest reads the JSON body of POST /v1/tokens and checks every
// field before anything uses it: the subject and client_id are
// identifiers (store.IDRule), the ttl is in range before it becomes a
// duration, and the claims pass checkClaims. Every refusal is 400
// invalid_request (413 for a body over maxFormBytes) whose description
// names the offending field and what it must be, never its value.
func readMintRequest(r *http.Request) (mintRequest, error) {
	var req mintRequest
	ct, err := singleHeader(r, "Content-Type")
	if err != nil {
		return req, err
	}
	switch mt, _, _ := mime.ParseMediaType(ct); mt {
	case "application/json":
	case "application/x-www-form-urlencoded", "multipart/form-data":
		return req, errInvalidRequest("this endpoint takes a JSON object (Content-Type: application/json), not a form: " + mintShape)
	default:
		return req, errInvalidRequest("content type must be application/json: " + mintShape)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return req, &Error{Status: http.StatusRequestEntityTooLarge, Code: oauth.InvalidRequest, Description: "request body too large"}
	}
	if !utf8.Valid(body) {
		// encoding/json would replace the bytes with U+FFFD, silently.
		return req, errInvalidRequest("malformed JSON body: not UTF-8 (RFC 8259 §8.1)")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, errInvalidRequest(describeJSONError(err))
	}
	if dec.More() {
		return req, errInvalidRequest("malformed JSON body: data after the object")
	}
	switch {
	case req.Subject == "":
		return req, errInvalidRequest(`field "subject" is required: the user to issue the tokens for`)
	case req.TTL < 0 || req.TTL > maxTTLSeconds: // before it is multiplied
		return req, errInvalidRequest(`field "ttl" must be ` + ttlType)
	}
	if err := checkParam("field", "subject", req.Subject); err != nil {
		return req, err
	}
	if req.ClientID != "" {
		if err := checkParam("field", "client_id", req.ClientID); err != nil {
			return req, err
		}
	}
	if len(req.Claims) > 0 && !bytes.Equal(bytes.TrimSpace(req.Claims), []byte("null")) {
		canon, err := canonicalClaims(req.Claims)
		if err != nil {
			return req, errInvalidRequest(`field "claims" must be a JSON object`)
		}
		if desc := checkClaims(req.Claims); desc != "" {
			return req, errInvalidRequest(desc)
		}
		req.Claims = canon
	} else {
		req.Claims = nil
	}
	return req, nil
}

// mintShape is the shape of a mint request, for error descriptions.
const mintShape = `{"subject": string, "scope": string, "ttl": seconds, "claims": object, "force": bool, "client_id": string}`

// mintFieldTypes says what each field of mintRequest must be.
var mintFieldTypes = map[string]string{
	"subject":   "a string",
	"scope":     "a string of space-separated scopes",
	"ttl":       ttlType,
	"claims":    "a JSON object",
	"force":     "true or false",
	"client_id": "a string: a public client this client may mint for",
}

// mintFieldAliases are names callers reach for, and the field they mean.
var mintFieldAliases = map[string]string{
	"sub": "subject", "user": "subject", "user_id": "subject", "username": "subject",
	"scopes": "scope", "expires_in": "ttl", "exp": "ttl", "lifetime": "ttl",
	"extra": "claims", "custom_claims": "claims",
	"client": "client_id", "clientid": "client_id", "for": "client_id", "on_behalf_of": "client_id",
}

// describeJSONError turns an error of json.Decoder.Decode into a
// description that names the field at fault. Field names come from the
// caller and are quoted with quoteParam; values are never echoed.
func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return "empty body: want a JSON object " + mintShape
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return "the body must be a JSON object " + mintShape
	case errors.As(err, &typeErr):
		if want, ok := mintFieldTypes[typeErr.Field]; ok {
			return "field " + quoteParam(typeErr.Field) + " must be " + want
		}
		return "field " + quoteParam(typeErr.Field) + " has the wrong type"
	case errors.As(err, &syntaxErr):
		return "malformed JSON body at byte " + strconv.FormatInt(syntaxErr.Offset, 10)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON body: it ends early"
	}
	// encoding/json has no typed error for an unknown field.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if u, err := strconv.Unquote(name); err == nil { // json quotes it with %q
			name = u
		}
		desc := "unknown field " + quoteParam(name)
		if want, ok := mintFieldAliases[strings.ToLower(name)]; ok {
			return desc + ` (did you mean "` + want + `"?)`
		}
		return desc + "; the fields are subject, scope, ttl, claims, force and client_id"
	}
	return "malformed JSON body"
}

// mintKey is the mint cache's key. Only a client's mints for itself are
// cached, so the minting client is the client the family is for.
func mintKey(minter, subject, scope string, ttl time.Duration, claims []byte) string {
	return strings.Join([]string{minter, subject, scope, ttl.String(), string(claims)}, "\x00")
}

// mintCache remembers the access tokens that confidential clients minted
// for themselves, in this process's memory (never in the store), during
// the first half of their life. It never holds a refresh token. An entry
// is handed out again only after the store has confirmed that
// introspection would call its token active (mintAgain). Each instance
// has its own: a repeated mint that reaches another instance starts a new
// family, which is safe, only less frugal.
type mintCache struct {
	mu      sync.Mutex
	entries map[string]mintEntry
}

type mintEntry struct {
	resp  *mintResponse // its expires says when the access token ends
	until time.Time     // reused until then
	kid   string        // the key that signed resp's access token
}

const maxMintCache = 10_000

func newMintCache() *mintCache { return &mintCache{entries: map[string]mintEntry{}} }

func (m *mintCache) get(key string, now time.Time) (mintEntry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if ok && !now.Before(e.until) {
		delete(m.entries, key)
		return mintEntry{}, false
	}
	return e, ok
}

func (m *mintCache) drop(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, key)
}

func (m *mintCache) put(key string, e mintEntry, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.entries) >= maxMintCache {
		for k, old := range m.entries {
			if !now.Before(old.until) {
				delete(m.entries, k)
			}
		}
		if len(m.entries) >= maxMintCache {
			return
		}
	}
	m.entries[key] = e
}
