package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokend/tokend/store"
)

// reasonPasswordChanged is the revocation reason of the families `tokend
// user passwd --end-logins` ends.
const reasonPasswordChanged = "password_changed"

// newUserPasswdCmd is `tokend user passwd`: a new password hash for a
// user, read as `user create` reads one; with --end-logins, the user's
// logins end.
func newUserPasswdCmd(cio *cmdIO) *cobra.Command {
	cmd := &cobra.Command{Use: "passwd NAME --password-stdin [--end-logins]", Short: "set a user's password, reading it from standard input",
		Long: `Set a user's password, read from standard input (one line), hashed with
argon2id. The old password stops working on every instance at once.

The user's logins (refresh-token families, and the login page's browser
sessions they came from) go on unless --end-logins ends them: give it
after a compromise.`,
		Example: `  echo 'new horse battery' | tokend user passwd alice --password-stdin
  echo 'new horse battery' | tokend user passwd alice --password-stdin --end-logins`,
		Args: exactArgs(1, "one user name")}
	fs := cmd.Flags()
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input (required)")
	endLogins := fs.Bool("end-logins", false, "also end every login of the user (after a compromise)")
	params := fs.String("argon2-params", argon2ParamsDefault(), "argon2id parameters of the hash: m=KiB,t=passes,p=lanes (env "+envName("argon2-params")+")")
	sf := addStoreFlags(fs, "encryption-")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx, name := cmd.Context(), args[0]
		if err := checkIDArg("the user name", name, false); err != nil {
			return err
		}
		hash, err := hashStdinPassword(cio.stdin, *fromStdin, *params)
		if err != nil {
			return err
		}
		return sf.with(ctx, cio.stderr, func(st store.Store) error {
			if err := setPasswordHash(ctx, st, name, hash); err != nil {
				return err
			}
			now := time.Now()
			if !*endLogins {
				fams, err := st.ListFamilies(ctx, store.FamilyFilter{Subject: name, ActiveAt: now})
				if err != nil {
					return err
				}
				// "sessions" is the word scripts and tests read: n families.
				fmt.Fprintf(cio.stdout, "password of user %s changed; %d sessions go on (--end-logins ends them)\n", name, len(fams))
				return nil
			}
			n, err := endUserLogins(ctx, st, name, now)
			if err != nil {
				return fmt.Errorf("password of user %s changed, but ending the logins failed (run the command again): %w", name, err)
			}
			fmt.Fprintf(cio.stdout, "password of user %s changed; %d sessions revoked\n", name, n)
			return nil
		})
	}
	return cmd
}

// setPasswordHash sets the password hash of user name, as a
// compare-and-set on the hash read (store.UpdatePasswordHash), reading
// again if a login upgraded the hash meanwhile.
func setPasswordHash(ctx context.Context, st store.Store, name, hash string) error {
	for range updateAttempts {
		u, err := st.GetUser(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no user %s (tokend user list shows them)", name)
		}
		if err != nil {
			return err
		}
		err = st.UpdatePasswordHash(ctx, name, u.PasswordHash, hash)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("no user %s: it was deleted meanwhile", name)
		case !errors.Is(err, store.ErrConflict):
			return err
		}
	}
	return fmt.Errorf("the password hash of user %s keeps changing concurrently; nothing changed, try again: %w", name, store.ErrConflict)
}

// endUserLogins revokes every family of subject name at now (reason
// reasonPasswordChanged) and ends the browser sessions they came from, so
// that the login page does not let the session start a new one without
// the new password. It returns how many families it revoked.
func endUserLogins(ctx context.Context, st store.Store, name string, now time.Time) (int, error) {
	fams, err := st.ListFamilies(ctx, store.FamilyFilter{Subject: name})
	if err != nil {
		return 0, err
	}
	n, err := st.RevokeFamilies(ctx, store.FamilyFilter{Subject: name}, now, reasonPasswordChanged)
	if err != nil {
		return 0, err
	}
	ended := map[string]bool{}
	for _, f := range fams {
		if f.SessionID == "" || ended[f.SessionID] {
			continue
		}
		ended[f.SessionID] = true
		if err := st.EndSession(ctx, f.SessionID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			return n, err
		}
	}
	return n, nil
}
