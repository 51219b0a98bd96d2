package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// shBlocks returns the contents of the ```sh blocks of a Markdown text, in
// order.
func shBlocks(md string) []string {
	var out []string
	for _, m := range regexp.MustCompile("(?ms)^```sh\n(.*?)^```$").FindAllStringSubmatch(md, -1) {
		out = append(out, m[1])
	}
	return out
}

// readmePath is the repository's README, from this package's directory.
const readmePath = "../../README.md"

// section returns the text of md's section with this heading line ("##
// X" or "### X"), up to the next heading of its level or above; "" if md
// has none.
func section(md, heading string) string {
	level := strings.Index(heading, " ") // the number of #s
	start := strings.Index(md, "\n"+heading+"\n")
	if level < 1 || start < 0 {
		return ""
	}
	rest := md[start+len(heading)+2:]
	fenced := false // inside a code block, whose "# …" lines are comments
	for i := 0; i < len(rest); {
		line, _, _ := strings.Cut(rest[i:], "\n")
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if n := len(line) - len(strings.TrimLeft(line, "#")); !fenced && n > 0 && n <= level && strings.HasPrefix(line[n:], " ") {
			return rest[:i]
		}
		i += len(line) + 1
	}
	return rest
}

// withoutSection returns md without the section with this heading line.
func withoutSection(md, heading string) string {
	sec := section(md, heading)
	if sec == "" {
		return md
	}
	return strings.Replace(md, heading+"\n"+sec, "", 1)
}

// readmeSection returns the README's section with this heading line;
// the test fails if there is none.
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	md, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	sec := section(string(md), heading)
	if sec == "" {
		t.Fatalf("the README has no section %q", heading)
	}
	return sec
}

// runBlocks runs blocks, verbatim and in order, in one bash process in
// dir (so that variables and background jobs carry from one to the next),
// stopping at the first command that fails. It returns the combined
// output and an error that names the block that failed. The process group
// is killed when it returns, with anything the blocks left running.
func runBlocks(ctx context.Context, dir string, env []string, blocks []string) (string, error) {
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for i, b := range blocks {
		fmt.Fprintf(&script, "echo '>>> block %d' >&2\n%s\n", i+1, b)
	}
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Start()
	if err == nil {
		err = cmd.Wait()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever the blocks left running
	}
	if err != nil {
		failed := "?"
		if m := regexp.MustCompile(`>>> block (\d+)\n`).FindAllStringSubmatch(out.String(), -1); len(m) > 0 {
			failed = m[len(m)-1][1]
		}
		return out.String(), fmt.Errorf("block %s failed: %w", failed, err)
	}
	return out.String(), nil
}

// section finds a section up to the next heading of its level or above,
// not stopping at a code block's "# comment" lines; withoutSection cuts
// it out.
func TestSection(t *testing.T) {
	md := "# T\n## A\na\n### A1\n```sh\n# not a heading\n```\na1\n## B\nb\n"
	if got := section(md, "## A"); got != "a\n### A1\n```sh\n# not a heading\n```\na1\n" {
		t.Fatalf("section A: %q", got)
	}
	if got := section(md, "### A1"); got != "```sh\n# not a heading\n```\na1\n" {
		t.Fatalf("section A1: %q", got)
	}
	if got := section(md, "## B"); got != "b\n" {
		t.Fatalf("section B: %q", got)
	}
	if got := withoutSection(md, "## A"); got != "# T\n## B\nb\n" {
		t.Fatalf("without A: %q", got)
	}
	if section(md, "## C") != "" || withoutSection(md, "## C") != md {
		t.Fatal("a missing section")
	}
}

// The runner fails when a block fails and names it, and carries variables
// from one block to the next.
func TestRunBlocks(t *testing.T) {
	md := "x\n```sh\nA=1\necho one\n```\n```go\nnot run\n```\n```sh\ntest \"$A\" = 1\nfalse\necho never\n```\n"
	blocks := shBlocks(md)
	if len(blocks) != 2 {
		t.Fatalf("blocks %q", blocks)
	}
	out, err := runBlocks(t.Context(), t.TempDir(), os.Environ(), blocks)
	if err == nil || !strings.Contains(err.Error(), "block 2 failed") || !strings.Contains(out, "one") || strings.Contains(out, "never") {
		t.Fatalf("err %v, output %q", err, out)
	}
	if _, err := runBlocks(t.Context(), t.TempDir(), os.Environ(), blocks[:1]); err != nil {
		t.Fatal(err)
	}
}

// The README's sh blocks run verbatim, in order, twice, in a fresh copy
// of the repository, as a newcomer would paste them: build, serve in the
// background, create a client and a user, log in, refresh, stop. The
// second run finds the first one's store and names, and the port free
// again. The server listens on a free port of the test's (TOKEND_ADDR, and
// the blocks' 127.0.0.1:8080 rewritten to it), so that a server a reader
// left on 8080 does not fail make test.
func TestReadme(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tokend and runs the README's shell blocks")
	}
	for _, tool := range []string{"bash", "curl", "sed", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README needs %s: %v", tool, err)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := shBlocks(withoutSection(string(md), "## Operations"))
	if len(blocks) < 3 {
		t.Fatalf("the README has %d sh blocks", len(blocks))
	}
	addr := freeAddr(t)
	for i, b := range blocks {
		blocks[i] = strings.ReplaceAll(b, "127.0.0.1:8080", addr)
	}
	dir := filepath.Join(t.TempDir(), "tokend")
	copyTree(t, root, dir)

	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOKEND_") {
			env = append(env, kv)
		}
	}
	env = append(env, "TOKEND_ADDR="+addr)
	for run := 1; run <= 2; run++ {
		ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
		out, err := runBlocks(ctx, dir, env, blocks)
		cancel()
		if err != nil {
			t.Fatalf("run %d: %v; output:\n%s", run, err, out)
		}
		// What the README shows: a login and a refresh, each with a
		// refresh token, and the stores the admin commands opened.
		if n := strings.Count(out, `"refresh_token":"rt2_`); n != 2 {
			t.Errorf("run %d: %d answers with a refresh token, want 2 (login, refresh); output:\n%s", run, n, out)
		}
		if !strings.Contains(out, "created user alice") || !strings.Contains(out, "tokend: store sqlite://"+filepath.Join(dir, "tokend.db")) {
			t.Errorf("run %d: output:\n%s", run, out)
		}
	}
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// copyTree copies the regular files of the repository at src to dst, as
// a fresh clone would have them: without .git, bin/ and tokend.db.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		switch name := d.Name(); {
		case rel == ".git" || rel == "bin" || name == "node_modules":
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil // a worktree's .git file
		case strings.HasPrefix(rel, "tokend.db"), !d.IsDir() && !d.Type().IsRegular():
			return nil
		case d.IsDir():
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		info, err := in.Stat()
		if err != nil {
			return err
		}
		out, err := os.OpenFile(filepath.Join(dst, rel), os.O_CREATE|os.O_EXCL|os.O_WRONLY, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}
