package sealed_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/store/sealed"
)

func TestParseKey(t *testing.T) {
	raw := []byte("\x00\x01\x02 an operator key: 32 bytes\xfd\xff\xfe")
	if len(raw) != 32 {
		t.Fatalf("raw is %d bytes", len(raw))
	}
	sum := sha256.Sum256(raw)
	wantID := hex.EncodeToString(sum[:4])
	std := base64.StdEncoding.EncodeToString(raw)
	url := base64.RawURLEncoding.EncodeToString(raw)
	good := map[string][]byte{
		"raw":              raw,
		"base64":           []byte(std),
		"base64 + newline": []byte(std + "\n"),
		"white space":      []byte("  \t" + std + "\r\n\n"),
		"url, unpadded":    []byte(url),
	}
	for name, in := range good {
		k, err := sealed.ParseKey(in)
		if err != nil || k.ID() != wantID {
			t.Errorf("%s: %v, %v; want ID %s", name, k, err, wantID)
		}
	}
	bad := map[string][]byte{
		"empty":                     nil,
		"31 raw bytes":              raw[:31],
		"33 raw bytes":              append(bytes.Clone(raw), 1),
		"base64 of 16 bytes":        []byte(base64.StdEncoding.EncodeToString(raw[:16])),
		"base64 of 33 bytes":        []byte(base64.StdEncoding.EncodeToString(append(bytes.Clone(raw), 1))),
		"32 base64 characters":      []byte(strings.Repeat("A", 32)), // 24 bytes, not a raw key
		"base64 with a stray space": []byte(std[:10] + " " + std[10:]),
		"hex":                       []byte(hex.EncodeToString(raw)),
	}
	for name, in := range bad {
		if k, err := sealed.ParseKey(in); !errors.Is(err, sealed.ErrKeySize) {
			t.Errorf("%s: %v, %v; want ErrKeySize", name, k, err)
		}
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	k, err := sealed.WriteKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	text, _ := os.ReadFile(path)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(string(text), "\n"))
	if err != nil || len(raw) != 32 || !strings.HasSuffix(string(text), "=\n") {
		t.Fatalf("key file holds %d bytes of base64 (%v), want 32 and a newline", len(raw), err)
	}
	sum := sha256.Sum256(raw)
	if k.ID() != hex.EncodeToString(sum[:4]) {
		t.Errorf("ID %s is not the first 4 bytes of the key's SHA-256", k.ID())
	}
	loaded, err := sealed.LoadKeyFile(path)
	if err != nil || loaded.ID() != k.ID() {
		t.Fatalf("LoadKeyFile: %v, %v", loaded, err)
	}
	// Both keys seal and open alike.
	inner := memory.New()
	if _, err := sealed.Wrap(inner, sealed.Keyring{Current: k}).Secret(t.Context(), "s", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := sealed.Wrap(inner, sealed.Keyring{Current: loaded}).Secret(t.Context(), "s", nil); err != nil || string(v) != "v" {
		t.Fatalf("the loaded key opens %q, %v", v, err)
	}

	// An existing file is never overwritten.
	if _, err := sealed.WriteKeyFile(path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("WriteKeyFile over an existing file: %v", err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, text) {
		t.Error("WriteKeyFile changed an existing file")
	}
	if _, err := sealed.LoadKeyFile(dir); err == nil {
		t.Error("LoadKeyFile of a directory succeeded")
	}
	if _, err := sealed.LoadKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadKeyFile of a missing file: %v", err)
	}
}

// Like ssh, a key file that group or others may access is refused.
func TestKeyFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	path := filepath.Join(t.TempDir(), "key")
	if _, err := sealed.WriteKeyFile(path); err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(path)
	for _, mode := range []os.FileMode{0o640, 0o604, 0o620, 0o644, 0o660, 0o666, 0o601} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := sealed.LoadKeyFile(path)
		if !errors.Is(err, sealed.ErrKeyFileMode) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: %v", mode, err)
		}
		if err != nil && strings.Contains(err.Error(), strings.TrimSpace(string(text))) {
			t.Errorf("mode %04o: the error quotes the key", mode)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := sealed.LoadKeyFile(path); err != nil {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
}

// No error, log line or printed form carries a key's bytes or a value, in
// any encoding.
func TestNothingSecretInErrorsOrLogs(t *testing.T) {
	rawK1, rawK2 := rawKey(0x5c), rawKey(0x6d)
	k1, _ := sealed.NewKey(rawK1)
	k2, _ := sealed.NewKey(rawK2)
	ring := sealed.Keyring{Current: k1, Old: []*sealed.Key{k2}}
	secrets := [][]byte{rawK1, rawK2}

	var out []string
	add := func(err error) {
		if err == nil {
			t.Fatal("an expected error is nil")
		}
		out = append(out, err.Error())
	}
	// Values: sealed under k1, then opened under another key, or in clear.
	inner := memory.New()
	want := fill(t, sealed.Wrap(inner, ring))
	for _, v := range want {
		secrets = append(secrets, []byte(v))
	}
	_, err := read(t, sealed.Wrap(inner, sealed.Keyring{}))
	add(err)
	_, err = read(t, sealed.Wrap(inner, sealed.Keyring{Current: k2}))
	add(err)
	raw := dump(t, inner)
	setRaw(t, inner, store.KindKey, "k1", []byte(raw["key/k2"]))
	_, err = read(t, sealed.Wrap(inner, ring))
	add(err)
	_, err = sealed.Seal(t.Context(), inner, sealed.Keyring{Current: k2})
	add(err)
	_, err = read(t, sealed.Wrap(fillClear(t), ring))
	add(err)
	// Keys: bad key material, key files.
	_, err = sealed.ParseKey(append([]byte(base64.StdEncoding.EncodeToString(rawK1)), 'x'))
	add(err)
	_, err = sealed.ParseKey(rawK1[:31])
	add(err)
	if runtime.GOOS != "windows" {
		path := filepath.Join(t.TempDir(), "key")
		if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(rawK1)), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = sealed.LoadKeyFile(path)
		add(err)
	}
	// Printed and logged forms.
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		out = append(out, fmt.Sprintf(format, k1), fmt.Sprintf(format, *k1), fmt.Sprintf(format, ring))
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("ring", "key", k1, "keyring", ring, "ids", ring.IDs())
	slog.New(slog.NewTextHandler(&logs, nil)).Info("ring", "key", k1, "keyring", ring)
	out = append(out, logs.String())

	for _, s := range out {
		for _, sec := range secrets {
			for _, enc := range []string{string(sec), hex.EncodeToString(sec), base64.StdEncoding.EncodeToString(sec),
				base64.RawURLEncoding.EncodeToString(sec), fmt.Sprintf("%q", sec), fmt.Sprint(sec)} {
				if strings.Contains(s, enc) {
					t.Errorf("%q carries a secret (%.12s...)", s, enc)
				}
			}
		}
	}
	if !strings.Contains(fmt.Sprintf("%#v", k1), k1.ID()) || !strings.Contains(logs.String(), k1.ID()) {
		t.Errorf("printed forms do not name the key by its ID: %#v, %s", k1, logs.String())
	}
}

func fillClear(t *testing.T) store.Store {
	st := memory.New()
	fill(t, st)
	return st
}
