package sealed

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
)

// KeySize is the length of an operator key in bytes: an AES-256 key.
const KeySize = 32

// Errors about operator keys and key files. They never carry key bytes.
var (
	// ErrKeySize reports key material that is not 32 bytes, raw or in
	// base64.
	ErrKeySize = errors.New("sealed: an operator key is 32 bytes, raw or in base64")
	// ErrKeyFileMode reports a key file that its group or others may read
	// or write; like ssh with a private key, it is refused.
	ErrKeyFileMode = errors.New("sealed: key file is accessible by group or others")
)

// Key is an operator key: 32 bytes that seal values with AES-256-GCM. Its
// ID, the first 4 bytes of the SHA-256 of the key in hex, names it in
// sealed values, errors and logs; the key bytes themselves are never
// printed: String, GoString and LogValue all give the ID. A Key is safe for
// concurrent use.
type Key struct {
	id   [4]byte
	aead cipher.AEAD
}

// NewKey returns the operator key made of raw, which must be KeySize bytes
// (ErrKeySize otherwise). NewKey keeps no reference to raw.
func NewKey(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, ErrKeySize
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("sealed: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("sealed: %w", err)
	}
	sum := sha256.Sum256(raw)
	k := &Key{aead: aead}
	copy(k.id[:], sum[:])
	return k, nil
}

// ParseKey returns the operator key in b: base64 (standard or URL
// alphabet, padded or not) of 32 bytes, with white space around it, as
// WriteKeyFile writes it and as TOKEND_ENCRYPTION_KEY holds it; or, if b is
// exactly 32 bytes and not all of them base64 characters, the raw key.
// Anything else is ErrKeySize; the error never quotes b.
func ParseKey(b []byte) (*Key, error) {
	if len(b) == KeySize && !isBase64Text(b) {
		return NewKey(b)
	}
	text := strings.TrimSpace(string(b))
	text = strings.TrimRight(text, "=")
	text = strings.NewReplacer("-", "+", "_", "/").Replace(text)
	raw, err := base64.RawStdEncoding.DecodeString(text)
	if err != nil || len(raw) != KeySize {
		clear(raw)
		return nil, ErrKeySize
	}
	defer clear(raw)
	return NewKey(raw)
}

func isBase64Text(b []byte) bool {
	for _, c := range b {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '+', c == '/', c == '-', c == '_', c == '=':
		default:
			return false
		}
	}
	return true
}

// LoadKeyFile reads the operator key in the file at path (see ParseKey for
// its forms). Unless on Windows, a file that its group or others may
// access at all is refused with ErrKeyFileMode, as ssh refuses such a
// private key: chmod 600 it.
func LoadKeyFile(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sealed: key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("sealed: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("sealed: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%w: %s has mode %04o; run chmod 600 %s", ErrKeyFileMode, path, perm, path)
	}
	raw, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, fmt.Errorf("sealed: key file %s: %w", path, err)
	}
	defer clear(raw)
	k, err := ParseKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w (key file %s)", err, path)
	}
	return k, nil
}

// WriteKeyFile makes a new random operator key and writes it to a new file
// at path, in base64 and a newline, with mode 0600. It fails, writing
// nothing, if path exists.
func WriteKeyFile(path string) (*Key, error) {
	raw := make([]byte, KeySize)
	defer clear(raw)
	_, _ = rand.Read(raw) // never fails (crypto/rand)
	k, err := NewKey(raw)
	if err != nil {
		return nil, err
	}
	text := []byte(base64.StdEncoding.EncodeToString(raw) + "\n")
	defer clear(text)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sealed: key file: %w", err)
	}
	if _, err := f.Write(text); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("sealed: key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("sealed: key file %s: %w", path, err)
	}
	return k, nil
}

// ID returns the key's ID: 8 hex digits, the first 4 bytes of the SHA-256
// of the raw key (for a key file written by WriteKeyFile:
// base64 -d FILE | sha256sum | cut -c1-8).
func (k Key) ID() string { return hex.EncodeToString(k.id[:]) }

// String returns "operator key " and the ID, never the key.
func (k Key) String() string { return "operator key " + k.ID() }

// GoString is String, so that %#v prints no key bytes either.
func (k Key) GoString() string { return k.String() }

// LogValue logs the ID only.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.ID()) }

// Keyring is the set of operator keys a store is read and written with.
// The zero Keyring, with no key at all, means encryption is off.
type Keyring struct {
	// Current seals every value written. If nil, values are written in
	// clear: encryption is off, or being turned off.
	Current *Key
	// Old keys only open values: those sealed before a rotation, while the
	// store is being resealed under Current (or unsealed).
	Old []*Key
}

// IDs returns the ID of every key in the ring, Current first; a key given
// twice is listed once.
func (r Keyring) IDs() []string {
	var ids []string
	for _, k := range r.keys() {
		id := k.ID()
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

func (r Keyring) keys() []*Key {
	ks := make([]*Key, 0, 1+len(r.Old))
	if r.Current != nil {
		ks = append(ks, r.Current)
	}
	for _, k := range r.Old {
		if k != nil {
			ks = append(ks, k)
		}
	}
	return ks
}

func (r Keyring) lookup(id []byte) *Key {
	for _, k := range r.keys() {
		if bytes.Equal(k.id[:], id) {
			return k
		}
	}
	return nil
}
