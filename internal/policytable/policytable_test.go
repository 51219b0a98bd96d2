package policytable

import (
	"testing"
	"time"
)

func TestEval(t *testing.T) {
	vars := map[string]time.Duration{"lifetime": time.Hour, "lead": 10 * time.Minute}
	cases := []struct {
		expr string
		want time.Duration
	}{
		{"25s", 25 * time.Second},
		{"250ms", 250 * time.Millisecond},
		{"1m", time.Minute},
		{"0.8×lifetime", 48 * time.Minute},
		{"lifetime/10", 6 * time.Minute},
		{"min(10s, lifetime/10)", 10 * time.Second},
		{"max(lifetime-60s, 0.5×lifetime)", 59 * time.Minute},
		{"min(0.8×lifetime, max(lifetime-60s, 0.5×lifetime))", 48 * time.Minute},
		{"0.1×lead", time.Minute},
		{"(1s + 2s) * 2", 6 * time.Second},
	}
	for _, tc := range cases {
		got, err := Eval(tc.expr, vars)
		if err != nil || got != tc.want {
			t.Errorf("Eval(%q) = %v, %v; want %v", tc.expr, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "5x", "min(1s)", "(1s", "life", "1s 2s"} {
		if _, err := Eval(bad, vars); err == nil {
			t.Errorf("Eval(%q) succeeded", bad)
		}
	}
}

// The project's table reads, every row has both values, and keys are
// unique.
func TestReadProjectTable(t *testing.T) {
	rows, err := Read("../../docs/client-policy.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 15 {
		t.Fatalf("%d rows", len(rows))
	}
	for k, r := range rows {
		if r.Go == "" || r.Browser == "" {
			t.Errorf("%s: empty value %+v", k, r)
		}
		if (r.Go == r.Browser) != (r.Why == "") {
			t.Errorf("%s: values %q and %q, why %q: a difference needs a reason, an agreement none", k, r.Go, r.Browser, r.Why)
		}
	}
}
