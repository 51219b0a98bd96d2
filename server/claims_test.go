package server

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// foldName is strings.EqualFold's relation, made a key: the Kelvin sign
// and k, the long s and s, and every case pair fold alike; İ (U+0130)
// and ı (U+0131) fold onto nothing ASCII.
func TestFoldName(t *testing.T) {
	for _, pair := range [][2]string{{"sub", "ſub"}, {"sub", "SUB"}, {"mask", "mas\u212a"}, {"Scope", "ſcope"}, {"ǆ", "ǅ"}, {"µ", "μ"}} {
		if foldName(pair[0]) != foldName(pair[1]) || !strings.EqualFold(pair[0], pair[1]) {
			t.Errorf("%q and %q fold apart", pair[0], pair[1])
		}
	}
	for _, pair := range [][2]string{{"sid", "sİd"}, {"client_id", "client_ıd"}, {"sub", "sub "}, {"sub", "su"}} {
		if foldName(pair[0]) == foldName(pair[1]) || strings.EqualFold(pair[0], pair[1]) {
			t.Errorf("%q and %q fold alike", pair[0], pair[1])
		}
	}
}

// reservedStruct is a struct with one field per reserved claim, tagged
// with its name, as a resource server decodes a token: encoding/json
// fills a field from any name that folds onto its tag.
var reservedStruct = func() reflect.Type {
	var fields []reflect.StructField
	for i, n := range reservedClaims {
		fields = append(fields, reflect.StructField{Name: "F" + string(rune('A'+i)), Type: reflect.TypeFor[any](), Tag: reflect.StructTag(`json:"` + n + `"`)})
	}
	return reflect.StructOf(fields)
}()

// FuzzCheckClaims: whatever checkClaims accepts decodes, as canonicalClaims
// stores it, into no reserved field of a case-insensitive decoder, and
// holds no two top-level names that fold alike; what it refuses, it
// refuses with a description naming "claims".
func FuzzCheckClaims(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		canon, err := canonicalClaims(raw)
		if err != nil {
			return // readMintRequest answers: field "claims" must be a JSON object
		}
		desc := checkClaims(raw)
		if desc != "" {
			if !strings.HasPrefix(desc, `field "claims" `) {
				t.Fatalf("checkClaims(%q) = %q", raw, desc)
			}
			return
		}
		v := reflect.New(reservedStruct)
		if err := json.Unmarshal(canon, v.Interface()); err != nil {
			t.Fatalf("canonical claims %s do not decode: %v", canon, err)
		}
		if !v.Elem().IsZero() {
			t.Fatalf("accepted claims %q set a reserved claim for a case-insensitive decoder: %+v", raw, v.Elem().Interface())
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(canon, &m); err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for k := range m {
			if prev, ok := seen[foldName(k)]; ok {
				t.Fatalf("accepted claims %q hold %q and %q", raw, prev, k)
			}
			seen[foldName(k)] = k
		}
		// The canonical form is stable: checking and canonicalising it
		// again changes nothing.
		if again, err := canonicalClaims(canon); err != nil || !bytes.Equal(again, canon) || checkClaims(canon) != "" {
			t.Fatalf("canonical claims %s are not stable: %s, %v", canon, again, err)
		}
	})
}
