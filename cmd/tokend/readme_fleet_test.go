package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fleetBlock returns the README's bash block of the section "Several
// instances": the three-instance setup.
func fleetBlock(t *testing.T, md string) string {
	t.Helper()
	m := regexp.MustCompile("(?ms)^## Several instances.*?^```bash\n(.*?)^```$").FindStringSubmatch(md)
	if m == nil {
		t.Fatal("the README has no bash block under \"## Several instances\"")
	}
	return m[1]
}

// The README's three-instance setup runs as shown, on PostgreSQL and on
// Redis (its STORE line pointed at a schema or key prefix of the test's
// own): three instances become ready, and a refresh through the second
// retried through the third returns the same successor.
func TestReadmeFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tokend and runs three instances")
	}
	for _, port := range []string{"8081", "8082", "8083"} {
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			t.Fatalf("the README's fleet needs 127.0.0.1:%s: %v", port, err)
		}
		ln.Close()
	}
	md, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := fleetBlock(t, string(md))
	storeLine := regexp.MustCompile(`(?m)^STORE='[^']*'.*$`)
	if !storeLine.MatchString(block) {
		t.Fatalf("the fleet block sets no STORE='…':\n%s", block)
	}
	bin := tokendBin.get(t)
	for _, fs := range fleetStores { // one after the other: they share the ports
		t.Run(fs.name, func(t *testing.T) {
			storeURL := fs.fresh(t)(fs.addr)
			script := storeLine.ReplaceAllLiteralString(block, "STORE='"+storeURL+"'")
			var env []string
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "TOKEND_") && !strings.HasPrefix(kv, "PATH=") {
					env = append(env, kv)
				}
			}
			env = append(env, "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			out, err := runBlocks(ctx, t.TempDir(), env, []string{script})
			if err != nil {
				t.Fatalf("%v; output:\n%s", err, out)
			}
			got := regexp.MustCompile(`"refresh_token":"(rt2_[^"]+)"`).FindAllStringSubmatch(out, -1)
			if len(got) != 2 || got[0][1] != got[1][1] {
				t.Fatalf("the refresh through the second instance and its retry through the third: %d answers with a refresh token, want 2 alike; output:\n%s", len(got), out)
			}
		})
	}
}
