package password

import (
	"errors"
	"strings"
	"testing"
)

// cheap are parameters that keep the tests fast.
var cheap = Params{Memory: 64, Time: 1, Threads: 1}

func TestHashCheck(t *testing.T) {
	h := Hash("correct horse")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if strings.Contains(h, "correct horse") {
		t.Fatal("hash contains the password")
	}
	if err := Check(h, "correct horse"); err != nil {
		t.Errorf("right password: %v", err)
	}
	if err := Check(h, "wrong"); !errors.Is(err, ErrMismatch) {
		t.Errorf("wrong password: %v", err)
	}
	if a, b := Hash("x"), Hash("x"); a == b {
		t.Error("same hash twice: no salt")
	}
}

// A hash made with any valid parameters is checked with its own; the
// previous default (64 MiB, 3 passes, 2 lanes) still verifies.
func TestCheckOwnParams(t *testing.T) {
	for _, p := range []Params{cheap, {Memory: 256, Time: 3, Threads: 4}} {
		h, err := p.Hash("pw")
		if err != nil {
			t.Fatal(err)
		}
		if want := "$argon2id$v=19$" + p.String() + "$"; !strings.HasPrefix(h, want) {
			t.Errorf("hash %q, want prefix %q", h, want)
		}
		if got, err := ParamsOf(h); err != nil || got != p {
			t.Errorf("ParamsOf = %v, %v; want %v", got, err, p)
		}
		if err := Check(h, "pw"); err != nil {
			t.Errorf("%v: right password: %v", p, err)
		}
		if err := Check(h, "pW"); !errors.Is(err, ErrMismatch) {
			t.Errorf("%v: wrong password: %v", p, err)
		}
	}
	// Made by the previous default, Params{65536, 3, 2}.
	const old = "$argon2id$v=19$m=65536,t=3,p=2$MTIzNDU2Nzg5MGFiY2RlZg$jQIFP5QGCduMdX3SA4grTx9MiZMqzG315FtXjgd09cE"
	if err := Check(old, "wonderland"); err != nil {
		t.Errorf("hash of the previous default: %v", err)
	}
}

func TestNeedsRehash(t *testing.T) {
	h, err := cheap.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	stronger := cheap
	stronger.Time++
	weaker := Params{Memory: 32, Time: 1, Threads: 1}
	shortSalt := "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	cases := []struct {
		name string
		hash string
		p    Params
		want bool
	}{
		{"same params", h, cheap, false},
		{"more passes now", h, stronger, true},
		{"less memory now", h, weaker, true},
		{"8-byte salt", shortSalt, cheap, true},
		{"malformed", "plain", cheap, true},
	}
	for _, tc := range cases {
		if got := NeedsRehash(tc.hash, tc.p); got != tc.want {
			t.Errorf("%s: NeedsRehash = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseParams(t *testing.T) {
	good := map[string]Params{
		"m=19456,t=2,p=1":     DefaultParams(),
		"m=47104,t=1,p=1":     {Memory: 47104, Time: 1, Threads: 1},
		"m=1048576,t=16,p=16": {Memory: MaxMemory, Time: MaxTime, Threads: MaxThreads},
		"m=8,t=1,p=1":         {Memory: 8, Time: 1, Threads: 1},
	}
	for s, want := range good {
		got, err := ParseParams(s)
		if err != nil || got != want {
			t.Errorf("ParseParams(%q) = %v, %v; want %v", s, got, err, want)
		}
		if got.String() != s {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), s)
		}
	}
	for _, s := range badParams {
		if p, err := ParseParams(s); !errors.Is(err, ErrParams) {
			t.Errorf("ParseParams(%q) = %v, %v; want ErrParams", s, p, err)
		}
	}
}

var badParams = []string{
	"",
	"m=19456,t=2",
	"t=2,m=19456,p=1",       // order
	"m=19456,t=2,p=1,x=1",   // extra
	"m=+19456,t=2,p=1",      // sign
	"m= 19456,t=2,p=1",      // space
	"m=19456,t=2,p=1 ",      // trailing space
	"m=0x100,t=2,p=1",       // hex
	"m=19456,t=0,p=1",       // no pass
	"m=19456,t=17,p=1",      // too many passes
	"m=19456,t=2,p=0",       // no lane
	"m=19456,t=2,p=17",      // too many lanes
	"m=19456,t=2,p=256",     // beyond uint8
	"m=7,t=1,p=1",           // less than 8 KiB per lane
	"m=1048577,t=1,p=1",     // more than 1 GiB
	"m=4294967296,t=1,p=1",  // beyond uint32
	"m=99999999999,t=1,p=1", // beyond ten digits
}

func TestHashBadParams(t *testing.T) {
	if h, err := (Params{Memory: 19456, Time: 2}).Hash("pw"); !errors.Is(err, ErrParams) || h != "" {
		t.Errorf("Hash with p=0 = %q, %v; want ErrParams", h, err)
	}
}

var malformed = []string{
	"",
	"plain",
	"$argon2i$v=19$m=65536,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
	"$argon2id$v=18$m=65536,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
	"$argon2id$v=019$m=65536,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
	"$argon2id$v=19$m=99999999,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
	"$argon2id$v=19$m=65536,t=0,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
	"$argon2id$v=19$m=65536,t=3,p=2xyz$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
	"$argon2id$v=19$m=65536,t=3,p=2$!!$aGFzaGhhc2hoYXNoaGFzaA",
	"$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHQ$aGFzaA",
}

func TestCheckMalformed(t *testing.T) {
	for _, h := range malformed {
		if err := Check(h, "pw"); !errors.Is(err, ErrMalformed) {
			t.Errorf("Check(%q) = %v, want ErrMalformed", h, err)
		}
		if _, err := ParamsOf(h); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParamsOf(%q) = %v, want ErrMalformed", h, err)
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, h := range malformed {
		f.Add(h)
	}
	f.Add("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Fuzz(func(t *testing.T, h string) {
		p, err := ParamsOf(h)
		if err != nil {
			return
		}
		if p.Memory > 1<<14 || p.Time > 4 {
			return // valid but slow: the bounds are tested above
		}
		if err := Check(h, "pw"); err == nil {
			t.Fatalf("fuzzed hash %q matched", h)
		}
	})
}

// Whatever ParseParams accepts is valid and reads back from its String.
func FuzzParseParams(f *testing.F) {
	for _, s := range badParams {
		f.Add(s)
	}
	f.Add("m=19456,t=2,p=1")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseParams(s)
		if err != nil {
			if !errors.Is(err, ErrParams) {
				t.Fatalf("ParseParams(%q): %v, not ErrParams", s, err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("ParseParams(%q) accepted invalid %v: %v", s, p, err)
		}
		q, err := ParseParams(p.String())
		if err != nil || q != p {
			t.Fatalf("round trip of %q: %v, %v", s, q, err)
		}
	})
}
