// Command tokend is the tokend token server and its admin tool: run
// "tokend serve" to serve, "tokend help" for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// shutdownSignals end every command gracefully: serve stops taking
// connections, lets the requests in flight finish, logs "shutting down"
// and exits 0. SIGHUP is one of them and reloads nothing: what changes at
// run time (keys, secrets, clients, users) is read from the store anyway,
// and settings take a restart.
func shutdownSignals() []os.Signal { return []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), shutdownSignals()...)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a mistake in the command line: exit code 2, with the
// command's usage unless brief (a bad setting, whose message says enough).
type usageError struct {
	err   error
	brief bool
}

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usageErrorf(format string, args ...any) error {
	return usageError{err: fmt.Errorf(format, args...)}
}

// io is what a command reads and writes.
type cmdIO struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// run executes one command line and returns the process exit code: 0 on
// success and for help, 1 on failure, 2 on a usage error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	cio := &cmdIO{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(cio)
	root.SetArgs(longFlags(root, args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if cmd == nil {
		cmd = root
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue) && ue.brief:
		fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), ue.err)
		return 2
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %v\n\n%s", cmd.CommandPath(), ue.err, cmd.UsageString())
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
		return 1
	}
}

// newRoot builds the command tree.
func newRoot(cio *cmdIO) *cobra.Command {
	root := &cobra.Command{
		Use:   "tokend",
		Short: "tokend keeps auth tokens fresh: the token server and its admin commands",
		Long: `tokend keeps auth tokens fresh: the token server and its admin commands.

The admin commands act on the store that serve uses: --store, or
TOKEND_STORE, default sqlite://tokend.db in the working directory. They
never create one, nor create or migrate its schema (serve and tokend
migrate do, --init, or restore from a backup), and say on stderr which
store they opened. If the store is sealed, they need its key too:
--encryption-key-file, or TOKEND_ENCRYPTION_KEY_FILE or
TOKEND_ENCRYPTION_KEY.`,
		Args:          cobra.ArbitraryArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE:          groupRun("serve, client, user, keys, secrets, families, encryption, backup, restore, copy, bench, migrate or version"),
		CompletionOptions: cobra.CompletionOptions{
			HiddenDefaultCmd: true,
		},
	}
	root.SetUsageTemplate(usageTemplate)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err: err} })
	root.AddCommand(newServeCmd(cio), newClientCmd(cio), newUserCmd(cio), newKeysCmd(cio), newSecretsCmd(cio),
		newFamiliesCmd(cio, "families"), newFamiliesCmd(cio, "sessions"), newEncryptionCmd(cio), newBackupCmd(cio), newRestoreCmd(cio),
		newBenchCmd(cio), newMigrateCmd(cio), newCopyCmd(cio), newVersionCmd(cio))
	return root
}

// usageTemplate is cobra's, except that a command with subcommands shows
// one usage line: "tokend client <command> [flags]".
const usageTemplate = `Usage:{{if .HasAvailableSubCommands}}
  {{.CommandPath}} <command> [flags]{{else if .Runnable}}
  {{.UseLine}}{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}{{$cmds := .Commands}}{{if eq (len .Groups) 0}}

Available Commands:{{range $cmds}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{else}}{{range $group := .Groups}}

{{.Title}}{{range $cmds}}{{if (and (eq .GroupID $group.ID) (or .IsAvailableCommand (eq .Name "help")))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if not .AllChildCommandsHaveGroup}}

Additional Commands:{{range $cmds}}{{if (and (eq .GroupID "") (or .IsAvailableCommand (eq .Name "help")))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasHelpSubCommands}}

Additional help topics:{{range .Commands}}{{if .IsAdditionalHelpTopicCommand}}
  {{rpad .CommandPath .CommandPathPadding}} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableSubCommands}}

"{{.CommandPath}} <command> -h" describes a command.{{end}}
`

// groupRun is the RunE of a command that only groups others: without a
// subcommand, or with an unknown one, it is a usage error.
func groupRun(want string) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 1 && args[0] == "help" {
			return cmd.Help()
		}
		if len(args) == 0 {
			return usageErrorf("want a command: %s", want)
		}
		return usageErrorf("unknown command %q: want %s", args[0], want)
	}
}

// exactArgs is cobra.ExactArgs as a usage error that names what is
// wanted.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < n:
			return usageErrorf("want %s", what)
		case len(args) > n:
			return usageErrorf("unexpected argument %q: want only %s", args[n], what)
		}
		return nil
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unexpected argument %q", args[0])
	}
	return nil
}

// singleDashFlag matches -name and -name=value: Go's flag package took
// long flags with one dash, and tokend did before it moved to cobra.
var singleDashFlag = regexp.MustCompile(`^-([a-z][a-z0-9-]+)(=.*)?$`)

// longFlags rewrites -name to --name where name is a long flag of some
// command of root, so that command lines written for the flag package
// keep working.
func longFlags(root *cobra.Command, args []string) []string {
	names := map[string]bool{"help": true, "version": true}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { names[f.Name] = true })
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if a == "--" {
			copy(out[i:], args[i:])
			break
		}
		if m := singleDashFlag.FindStringSubmatch(a); m != nil && names[m[1]] {
			out[i] = "-" + a
		}
	}
	if len(out) > 0 && out[0] == "--version" {
		out[0] = "version"
	}
	return out
}

func newVersionCmd(cio *cmdIO) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version: the module's, and the VCS revision it was built from",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(cio.stdout, "tokend", version(debug.ReadBuildInfo()))
			return nil
		},
	}
}

// version reports the module version the binary was built from and, if
// the build recorded it, the VCS revision, its time and whether the tree
// had changes: "v1.2.0", "(devel) 3f9a0c1e5b7d 2026-11-30T03:14:00Z
// modified". Without build information it is "(devel)".
func version(bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
		return "(devel)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return v
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	parts := []string{v, rev}
	if at != "" {
		parts = append(parts, at)
	}
	if modified {
		parts = append(parts, "modified")
	}
	return strings.Join(parts, " ")
}
