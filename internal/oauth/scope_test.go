package oauth

import "testing"

func TestIsScopeToken(t *testing.T) {
	for s, want := range map[string]bool{
		"read": true, "api:write": true, "https://api.example/x": true, "!#$%&'()*+,-./:;<=>?@[]^_`{|}~": true,
		"": false, "a b": false, `a"b`: false, `a\b`: false, "é": false, "a\tb": false, "a\x7f": false,
	} {
		if got := IsScopeToken(s); got != want {
			t.Errorf("IsScopeToken(%q) = %v, want %v", s, got, want)
		}
	}
}
