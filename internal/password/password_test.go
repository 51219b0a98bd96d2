package password

import (
	"errors"
	"strings"
	"testing"
)

func TestHashCheck(t *testing.T) {
	h := Hash("correct horse")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
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

var malformed = []string{
	"",
	"plain",
	"$argon2i$v=19$m=65536,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
	"$argon2id$v=18$m=65536,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
	"$argon2id$v=19$m=99999999,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
	"$argon2id$v=19$m=65536,t=0,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
	"$argon2id$v=19$m=65536,t=3,p=2$!!$aGFzaGhhc2hoYXNoaGFzaA",
	"$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHQ$aGFzaA",
}

func TestCheckMalformed(t *testing.T) {
	for _, h := range malformed {
		if err := Check(h, "pw"); !errors.Is(err, ErrMalformed) {
			t.Errorf("Check(%q) = %v, want ErrMalformed", h, err)
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, h := range malformed {
		f.Add(h)
	}
	f.Add("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Fuzz(func(t *testing.T, h string) {
		err := Check(h, "pw")
		if err == nil {
			t.Fatalf("fuzzed hash %q matched", h)
		}
	})
}
