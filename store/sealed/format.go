package sealed

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tokend/tokend/store"
)

// A sealed value is
//
//	"tks1" | key ID (4 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext | tag (16 bytes)
//
// sealed with the additional data
//
//	"tks1" | key ID | kind | 0x00 | name
//
// so that it opens only as the value of the record it was sealed for (kind
// store.KindKey and the kid, or store.KindSecret and the secret's name),
// under the key it names. A value that does not start with "tks1" or is
// shorter than 36 bytes is in clear: a PKCS #8 private key starts with
// 0x30, and the 32-byte secrets tokend makes are too short to be taken for
// a sealed value. A later format gets another prefix.
const (
	prefix     = "tks1"
	headerSize = len(prefix) + 4
	minSealed  = headerSize + 12 + 16
)

// Errors about sealed values. The error returned wraps one of them and
// names the record (the kid, or the secret's name) and operator key IDs,
// never a key or a value.
var (
	// ErrClear reports a value in clear read while an operator key is
	// configured: the store was written without the key, or has not been
	// sealed yet (tokend encryption seal).
	ErrClear = errors.New("sealed: value stored in clear")
	// ErrUnknownKey reports a value sealed under an operator key that is
	// not in the keyring.
	ErrUnknownKey = errors.New("sealed: value sealed under an operator key not in the keyring")
	// ErrTampered reports a sealed value that does not open under the key
	// it names: altered, truncated, or moved from another record.
	ErrTampered = errors.New("sealed: value does not open")
	// ErrNoKey reports a Seal without a current key.
	ErrNoKey = errors.New("sealed: no operator key to seal with")
)

// recordError is an error about the value of one record.
type recordError struct {
	kind, name string
	err        error // one of the sentinels
	detail     string
}

func (e *recordError) Error() string {
	label := e.kind
	switch e.kind {
	case store.KindKey:
		label = "signing key"
	case store.KindSecret:
		label = "secret"
	}
	return "sealed: " + label + " " + strconv.Quote(e.name) + ": " + e.detail
}

// Unwrap returns the sentinel and store.ErrUnreadable: a value that does
// not open is one this process cannot read.
func (e *recordError) Unwrap() []error { return []error{e.err, store.ErrUnreadable} }

// keyID returns the operator key ID of a sealed value, or ok false if v is
// in clear.
func keyID(v []byte) (id []byte, ok bool) {
	if len(v) < minSealed || string(v[:len(prefix)]) != prefix {
		return nil, false
	}
	return v[len(prefix):headerSize], true
}

func additionalData(header []byte, kind, name string) []byte {
	ad := make([]byte, 0, len(header)+len(kind)+1+len(name))
	ad = append(ad, header...)
	ad = append(ad, kind...)
	ad = append(ad, 0)
	return append(ad, name...)
}

// seal seals plain for the record kind/name under r.Current, or returns a
// copy of plain if r.Current is nil (encryption off).
func (r Keyring) seal(kind, name string, plain []byte) []byte {
	k := r.Current
	if k == nil {
		return append([]byte(nil), plain...)
	}
	out := make([]byte, headerSize, headerSize+len(plain)+k.aead.Overhead())
	copy(out, prefix)
	copy(out[len(prefix):], k.id[:])
	return k.aead.Seal(out, nil, plain, additionalData(out[:headerSize], kind, name))
}

// open returns the plain value of the record kind/name stored as v. A
// value in clear is returned as it is if r.Current is nil and refused with
// ErrClear otherwise.
func (r Keyring) open(kind, name string, v []byte) ([]byte, error) {
	id, sealed := keyID(v)
	if !sealed {
		if r.Current != nil {
			return nil, &recordError{kind, name, ErrClear,
				`stored in clear, but an operator key is configured; seal the store first ("tokend encryption seal")`}
		}
		return append([]byte(nil), v...), nil
	}
	k := r.lookup(id)
	if k == nil {
		detail := fmt.Sprintf("sealed under operator key %x, and no operator key is configured", id)
		if ids := r.IDs(); len(ids) > 0 {
			detail = fmt.Sprintf("sealed under operator key %x, which is not in the keyring (%s)", id, strings.Join(ids, ", "))
		}
		return nil, &recordError{kind, name, ErrUnknownKey, detail}
	}
	plain, err := k.aead.Open(nil, nil, v[headerSize:], additionalData(v[:headerSize], kind, name))
	if err != nil {
		return nil, &recordError{kind, name, ErrTampered,
			fmt.Sprintf("does not open under operator key %s: altered, or moved from another record", k.ID())}
	}
	return plain, nil
}
