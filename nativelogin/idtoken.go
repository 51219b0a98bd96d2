package nativelogin

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// idClaims are the ID token claims a login checks (OpenID Connect Core
// 1.0 §2).
type idClaims struct {
	Issuer string   `json:"iss"`
	Aud    audience `json:"aud"`
	Azp    string   `json:"azp"`
	Nonce  string   `json:"nonce"`
}

// audience is the aud claim: one string or an array of them.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// checkIDToken returns tok's ID token and its claims after checking them
// against the request (OpenID Connect Core 1.0 §3.1.3.7): nonce is the
// one sent, "" when the openid scope was not asked for. The signature is
// not verified (see Login).
func checkIDToken(tok *oauth2.Token, issuer, clientID, nonce string) (string, map[string]any, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		if nonce != "" {
			return "", nil, fmt.Errorf("%w: the openid scope was asked for and no ID token came (OpenID Connect Core 1.0 §3.1.3.3)", ErrIDToken)
		}
		return "", nil, nil
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", nil, fmt.Errorf("%w: not a JWS compact serialization", ErrIDToken)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", nil, fmt.Errorf("%w: payload is not base64url", ErrIDToken)
	}
	var c idClaims
	var all map[string]any
	if json.Unmarshal(payload, &c) != nil || json.Unmarshal(payload, &all) != nil {
		return "", nil, fmt.Errorf("%w: claims are not a JSON object", ErrIDToken)
	}
	switch {
	case c.Issuer != issuer:
		return "", nil, fmt.Errorf("%w: %w: iss", ErrIDToken, ErrIssuerMismatch)
	case !slices.Contains(c.Aud, clientID):
		return "", nil, fmt.Errorf("%w: aud does not name the client", ErrIDToken)
	case c.Azp != "" && c.Azp != clientID:
		return "", nil, fmt.Errorf("%w: azp names another client", ErrIDToken)
	case nonce != "" && subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(nonce)) != 1:
		return "", nil, fmt.Errorf("%w: nonce does not match the request", ErrIDToken)
	}
	return raw, all, nil
}
