// Package password hashes and checks user passwords with argon2id (RFC
// 9106), in the PHC string format "$argon2id$v=19$m=M,t=T,p=P$salt$hash".
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ErrMismatch reports a password that does not match its hash.
var ErrMismatch = errors.New("password: mismatch")

// ErrMalformed reports a hash string that is not a supported PHC string.
var ErrMalformed = errors.New("password: malformed hash")

// Parameters: RFC 9106's second recommended option (64 MiB, 3 passes),
// with the parallelism of the machines tokend runs on.
const (
	memoryKiB = 64 * 1024
	passes    = 3
	lanes     = 2
	saltLen   = 16
	keyLen    = 32
	// Upper bounds accepted when checking a stored hash, so that a
	// tampered hash cannot make a login cost gigabytes.
	maxMemoryKiB = 1 << 20
	maxPasses    = 16
	maxLanes     = 16
)

var b64 = base64.RawStdEncoding

// Hash returns the argon2id PHC string of pw with a random salt.
func Hash(pw string) string {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, passes, memoryKiB, lanes, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, memoryKiB, passes, lanes, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Check reports whether pw matches hash: nil, ErrMismatch, or ErrMalformed.
func Check(hash, pw string) error {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return ErrMalformed
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return ErrMalformed
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil ||
		m == 0 || m > maxMemoryKiB || t == 0 || t > maxPasses || p == 0 || p > maxLanes {
		return ErrMalformed
	}
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(want) < 16 || len(want) > 64 {
		return ErrMalformed
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}
