// Command tokend is the tokend token server and its admin tool: run
// "tokend serve" to serve, "tokend help" for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `Usage: tokend <command> [flags]

Commands:
  serve                         run the token server (tokend serve -h for its flags)
  client create|list|delete     manage OAuth clients
  user create|delete            manage built-in users (password grant)
  keys list|rotate|revoke       manage signing keys (revoke KID withdraws one at once)
  sessions list|revoke          list and end refresh-token families
  encryption keygen|status|seal|rotate|unseal
                                encrypt signing keys and secrets at rest
  bench                         load-test refresh-token rotation or password logins
  version                       print the version

The admin commands act on the store that serve uses: --store, or
TOKEND_STORE, default sqlite://tokend.db in the working directory.
If the store is sealed, they need its key too: --encryption-key-file,
or TOKEND_ENCRYPTION_KEY_FILE or TOKEND_ENCRYPTION_KEY.
`

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }

// run executes one subcommand and returns the process exit code: 0 on
// success, 1 on failure, 2 on a usage error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "tokend", version())
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "client":
		err = cmdClient(ctx, args[1:], stdin, stdout, stderr)
	case "user":
		err = cmdUser(ctx, args[1:], stdin, stdout, stderr)
	case "keys":
		err = cmdKeys(ctx, args[1:], stdout, stderr)
	case "sessions":
		err = cmdSessions(ctx, args[1:], stdout, stderr)
	case "encryption":
		err = cmdEncryption(ctx, args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(ctx, args[1:], stdout, stderr)
	default:
		err = usageError{fmt.Errorf("unknown command %q", args[0])}
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "tokend: %v\n\n%s", ue.err, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "tokend: %v\n", err)
		return 1
	}
}

// version reports the module version the binary was built from, or
// "(devel)" for a build from a work tree.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
