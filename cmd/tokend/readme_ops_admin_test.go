package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The sh blocks of the README's section "The admin plane, signals and
// settings" run as written, in order, with the tokend
// binary on the PATH, their PostgreSQL schemas replaced by new ones of the
// test's and their ports by free ones; what the comments show is in the
// output, and the schema that client list met is still missing after it.
func TestDocsOpsAdmin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tokend and runs the document's shell blocks")
	}
	blocks := shBlocks(readmeSection(t, "### The admin plane, signals and settings"))
	if len(blocks) != 4 {
		t.Fatalf("%d sh blocks", len(blocks))
	}
	ops, nowhere := newSchemaName(t), newSchemaName(t)
	pub, adm := freeAddr(t), freeAddr(t)
	repl := strings.NewReplacer("search_path=tokend_ops", "search_path="+ops, "search_path=tokend_nowhere", "search_path="+nowhere,
		"127.0.0.1:8090", pub, "127.0.0.1:9090", adm)
	for i, b := range blocks {
		blocks[i] = repl.Replace(b)
	}
	bin := tokendBin.get(t)
	env := docEnv(bin)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := runBlocks(ctx, t.TempDir(), env, blocks)
	if err != nil {
		t.Fatalf("%v; output:\n%s", err, out)
	}
	for _, want := range []string{
		"\nok\n", "\n404\n", "\ntokend_store_up 1\n", `msg="shutting down"`, "\nexit 0\n",
		"store: postgres://tokend:xxxxx@db.example/tokend  # --store; secrets shown as xxxxx\n",
		"admin-addr: " + adm + "  # --admin-addr\n",
		"tokend client list: no tokend schema in postgres://postgres@127.0.0.1:5432/test?search_path=" + nowhere + " (from --store): run `tokend migrate --store ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "S3cret") {
		t.Errorf("the output shows the password:\n%s", out)
	}
	if !strings.Contains(out, `msg="serving /v1, /metrics" admin-addr=`+adm) || strings.Contains(out, "on the public address") {
		t.Errorf("the log does not say the admin plane is on its own listener:\n%s", out)
	}
	if pgSchemaExists(t, nowhere) {
		t.Errorf("client list created schema %s", nowhere)
	}
}
