// Package password hashes and checks user passwords with argon2id (RFC
// 9106), in the PHC string format "$argon2id$v=19$m=M,t=T,p=P$salt$hash".
//
// The cost parameters are a value, Params; DefaultParams follows the OWASP
// Password Storage Cheat Sheet. A stored hash carries its own parameters,
// so Check verifies hashes made with any parameters within the bounds
// below, and NeedsRehash tells when a hash should be replaced by one with
// the current parameters (at the next successful login, when the password
// is at hand).
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ErrMismatch reports a password that does not match its hash.
var ErrMismatch = errors.New("password: mismatch")

// ErrMalformed reports a hash string that is not a supported PHC string,
// or whose parameters are out of bounds.
var ErrMalformed = errors.New("password: malformed hash")

// ErrParams reports parameters that are out of bounds (see Params.Validate)
// or a parameter string that is not "m=M,t=T,p=P".
var ErrParams = errors.New("password: bad argon2id parameters")

// Bounds on parameters, both of new hashes and of stored ones, so that a
// tampered hash cannot make a login cost gigabytes or minutes.
const (
	MaxMemory  = 1 << 20 // KiB: 1 GiB
	MaxTime    = 16
	MaxThreads = 16
)

const (
	saltLen = 16 // bytes; RFC 9106 §3.1 recommends 16
	keyLen  = 32 // bytes, the tag length
)

// Params are argon2id's cost parameters (RFC 9106 §3.1), as in the PHC
// string's "m=M,t=T,p=P".
type Params struct {
	// Memory is m, the memory one hash or check holds while it runs, in
	// KiB. RFC 9106 asks for at least 8 × Threads.
	Memory uint32
	// Time is t, the number of passes over the memory.
	Time uint32
	// Threads is p, the degree of parallelism (lanes). Go's argon2 runs
	// one goroutine per lane.
	Threads uint8
}

// DefaultParams returns m=19456 (19 MiB), t=2, p=1: the OWASP Password
// Storage Cheat Sheet's argon2id configuration ("a minimum configuration
// of 19 MiB of memory, an iteration count of 2, and 1 degree of
// parallelism"; its other configurations trade memory for passes at equal
// strength). Of them it keeps memory moderate, which bounds the memory a
// login storm can take, while staying at OWASP's level. One lane: under
// load, parallelism comes from concurrent logins, not from one login
// spreading over every core.
func DefaultParams() Params {
	return Params{Memory: 19 * 1024, Time: 2, Threads: 1}
}

// String returns p as "m=M,t=T,p=P", the form ParseParams reads and the
// PHC string holds.
func (p Params) String() string {
	return fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, p.Threads)
}

// MemoryBytes returns the memory one hash or check with p holds, in bytes.
func (p Params) MemoryBytes() int64 {
	return int64(p.Memory) << 10
}

// Validate returns an error wrapping ErrParams unless 1 ≤ Time ≤ MaxTime,
// 1 ≤ Threads ≤ MaxThreads and 8 × Threads ≤ Memory ≤ MaxMemory
// (RFC 9106 §3.1).
func (p Params) Validate() error {
	switch {
	case p.Threads < 1 || p.Threads > MaxThreads:
		return fmt.Errorf("%w: p=%d, want 1 to %d", ErrParams, p.Threads, MaxThreads)
	case p.Time < 1 || p.Time > MaxTime:
		return fmt.Errorf("%w: t=%d, want 1 to %d", ErrParams, p.Time, MaxTime)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > MaxMemory:
		return fmt.Errorf("%w: m=%d KiB, want %d to %d", ErrParams, p.Memory, 8*uint32(p.Threads), MaxMemory)
	}
	return nil
}

// ParseParams parses "m=M,t=T,p=P" (decimal, in this order, as in a PHC
// string) and validates it. It returns an error wrapping ErrParams.
func ParseParams(s string) (Params, error) {
	fields := strings.Split(s, ",")
	if len(fields) != 3 {
		return Params{}, fmt.Errorf("%w: %q is not m=M,t=T,p=P", ErrParams, s)
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		digits, ok := strings.CutPrefix(fields[i], name)
		if !ok || !isDecimal(digits) {
			return Params{}, fmt.Errorf("%w: %q is not m=M,t=T,p=P", ErrParams, s)
		}
		v, err := strconv.ParseUint(digits, 10, 32)
		if err != nil {
			return Params{}, fmt.Errorf("%w: %q: %s out of range", ErrParams, s, name)
		}
		vals[i] = v
	}
	if vals[2] > MaxThreads {
		return Params{}, fmt.Errorf("%w: p=%d, want 1 to %d", ErrParams, vals[2], MaxThreads)
	}
	p := Params{Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2])}
	if err := p.Validate(); err != nil {
		return Params{}, err
	}
	return p, nil
}

// isDecimal reports whether s is 1 to 10 ASCII digits: no sign, no space.
func isDecimal(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

var b64 = base64.RawStdEncoding

// Hash returns the argon2id PHC string of pw with p and a random 16-byte
// salt. It returns an error wrapping ErrParams if p is out of bounds.
func (p Params) Hash(pw string) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$%s$%s$%s", argon2.Version, p, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Hash returns the argon2id PHC string of pw with DefaultParams and a
// random salt.
func Hash(pw string) string {
	h, _ := DefaultParams().Hash(pw) // DefaultParams are valid
	return h
}

// phc is a parsed hash.
type phc struct {
	params    Params
	salt, key []byte
}

func parse(hash string) (phc, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return phc{}, ErrMalformed
	}
	p, err := ParseParams(parts[3])
	if err != nil {
		return phc{}, ErrMalformed
	}
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(salt) > 64 || len(key) < 16 || len(key) > 64 {
		return phc{}, ErrMalformed
	}
	return phc{params: p, salt: salt, key: key}, nil
}

// ParamsOf returns the parameters hash was made with, or ErrMalformed. It
// costs no hashing: callers use it to know a check's memory beforehand.
func ParamsOf(hash string) (Params, error) {
	h, err := parse(hash)
	return h.params, err
}

// NeedsRehash reports whether hash should be replaced by a hash of the
// same password with p: its parameters, salt or key length differ from
// what Params.Hash makes (weaker or stronger alike: lowered parameters are
// an operator's choice too), or it is malformed.
func NeedsRehash(hash string, p Params) bool {
	h, err := parse(hash)
	return err != nil || h.params != p || len(h.salt) != saltLen || len(h.key) != keyLen
}

// Check reports whether pw matches hash: nil, ErrMismatch, or ErrMalformed.
// The check holds the hash's m KiB of memory while it runs (see ParamsOf).
func Check(hash, pw string) error {
	h, err := parse(hash)
	if err != nil {
		return err
	}
	p := h.params
	got := argon2.IDKey([]byte(pw), h.salt, p.Time, p.Memory, p.Threads, uint32(len(h.key)))
	if subtle.ConstantTimeCompare(got, h.key) != 1 {
		return ErrMismatch
	}
	return nil
}
