package store

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Identifiers. Client IDs, user names, subjects, family IDs,
// key IDs and access-token IDs (jti) are identifiers: 1 to MaxIDLen
// bytes of UTF-8 without control characters (IDRule). Every backend can
// hold them (PostgreSQL refuses NUL and invalid UTF-8 in text; its
// indexes refuse long values), and every log line and terminal can show
// them. The server checks each identifier a request carries with CheckID
// before it reaches a store, and `tokend` each one an operator types.
//
// Every backend answers an identifier that CheckID refuses alike, before
// it touches its data:
//   - a method that would store it (CreateClient, CreateUser,
//     CreateFamily, RevokeAccessToken, CreateAuthorizationCode,
//     RedeemAuthorizationCode, CreateSession, PutConsent) returns an
//     error wrapping ErrInvalid and stores nothing;
//   - a method that looks it up answers as for an identifier it does not
//     hold (ErrNotFound, false, an empty list, 0 revoked): no such record
//     can exist.

// MaxIDLen is the longest identifier, in bytes.
const MaxIDLen = 256

// IDRule says what an identifier must be, for messages: "1 to 256 bytes
// of UTF-8 without control characters".
const IDRule = "1 to 256 bytes of UTF-8 without control characters"

// ClientIDRule says what the ID of a new client must be, for messages.
const ClientIDRule = "1 to 256 bytes of UTF-8 without control characters, white space or commas"

// ErrInvalid reports a record a store refused to hold because one of its
// identifiers breaks IDRule (or, for a new client's ID and its MintFor,
// ClientIDRule). Nothing was stored.
var ErrInvalid = errors.New("store: invalid identifier")

// CheckID reports whether id is an identifier (IDRule): 1 to MaxIDLen
// bytes of valid UTF-8 none of whose characters is a control character
// (Unicode category Cc: U+0000 to U+001F and U+007F to U+009F). It
// returns nil or an error wrapping ErrInvalid that says what is wrong,
// never quoting id.
func CheckID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalid)
	case len(id) > MaxIDLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxIDLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: not UTF-8", ErrInvalid)
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: a control character (U+%04X)", ErrInvalid, r)
		}
	}
	return nil
}

// CheckClientID is CheckID for the ID of a new client (ClientIDRule),
// which also has no white space (unicode.IsSpace) and no comma: the
// backends keep a client's MintFor as one space-separated value, and the
// flags of `tokend client create` separate IDs by commas. A client
// created before this rule with a space in its ID can still be looked up,
// authenticated and deleted; no client may name it in MintFor.
func CheckClientID(id string) error {
	if err := CheckID(id); err != nil {
		return err
	}
	if i := indexSpaceOrComma(id); i >= 0 {
		return fmt.Errorf("%w: white space or a comma at byte %d", ErrInvalid, i)
	}
	return nil
}

func indexSpaceOrComma(s string) int {
	for i, r := range s {
		if r == ',' || unicode.IsSpace(r) {
			return i
		}
	}
	return -1
}

// CheckClient checks the identifiers of a client about to be created:
// its ID and each of its MintFor (CheckClientID). Backends call it in
// CreateClient.
func CheckClient(c Client) error {
	if err := CheckClientID(c.ID); err != nil {
		return fmt.Errorf("client ID: %w", err)
	}
	for i, id := range c.MintFor {
		if err := CheckClientID(id); err != nil {
			return fmt.Errorf("client MintFor[%d]: %w", i, err)
		}
	}
	return nil
}

// CheckFamily checks the identifiers of a family about to be created:
// its ID, ClientID, Subject and, if set, SessionID (CheckID). Backends
// call it in CreateFamily and RedeemAuthorizationCode.
func CheckFamily(f Family) error {
	return checkIDs("family", []string{"ID", f.ID, "ClientID", f.ClientID, "Subject", f.Subject}, "SessionID", f.SessionID)
}

// Unknown reports whether any of ids breaks IDRule, for the backends'
// lookups: no record can have such an identifier, so the lookup answers
// as for an unknown one without asking the database. Empty strings are
// not looked at: an empty FamilyFilter field matches everything.
func Unknown(ids ...string) bool {
	for _, id := range ids {
		if id != "" && CheckID(id) != nil {
			return true
		}
	}
	return false
}
