// Command cli-login logs a user in from the terminal through the system
// browser (package nativelogin, RFC 8252) and prints the claims of the
// access token it got, never the token. The refresh token is kept in a
// 0600 file under the user's configuration directory
// (os.UserConfigDir()/tokend-example/), written again on every rotation
// through refresh.Options.OnRefresh, so the next run needs no browser:
//
//	go run ./examples/cli-login --issuer https://auth.example.com --client-id my-cli
//
// The client must be registered as a public client with the redirect URI
// http://127.0.0.1/callback (any port matches a loopback URI). Delete the
// file to log in again.
//
// The system browser opens the login page (nativelogin.OpenSystemBrowser);
// where there is none, or with BROWSER=none in the environment (a remote
// shell, or a test that drives a browser of its own), the program prints
// the address to open on standard error and waits for the browser to come
// back to it:
//
//	BROWSER=none go run ./examples/cli-login --issuer https://auth.example.com --client-id my-cli
package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"golang.org/x/oauth2"

	"github.com/tokend/tokend/nativelogin"
	"github.com/tokend/tokend/refresh"
)

func main() {
	issuer := flag.String("issuer", "", "the authorization server's issuer URL (required)")
	clientID := flag.String("client-id", "", "the client id, a public client (required)")
	scope := flag.String("scope", "openid offline_access", "the scopes to ask for, space separated")
	flag.Parse()
	if *issuer == "" || *clientID == "" {
		flag.Usage()
		os.Exit(2)
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg := nativelogin.Config{Issuer: *issuer, ClientID: *clientID, Scopes: strings.Fields(*scope), OpenBrowser: browserFromEnv(os.Getenv)}
	if err := run(ctx, cfg, filepath.Join(dir, "tokend-example"), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// browserFromEnv returns how to open the login page: the system browser,
// or, when the environment has BROWSER=none, nothing, so that
// nativelogin.Login prints the address to standard error instead.
func browserFromEnv(getenv func(string) string) func(ctx context.Context, url string) error {
	if getenv("BROWSER") == "none" {
		return func(context.Context, string) error {
			return fmt.Errorf("%w: BROWSER=none", nativelogin.ErrNoBrowser)
		}
	}
	return nativelogin.OpenSystemBrowser
}

// run gets a token for cfg, from the refresh token saved under dir if
// there is one, else by logging in, and prints its claims to out.
func run(ctx context.Context, cfg nativelogin.Config, dir string, out io.Writer) error {
	store := tokenFile{path: filepath.Join(dir, fileName(cfg.Issuer, cfg.ClientID))}
	cfg.Options = &refresh.Options{OnRefresh: func(_ context.Context, tok *oauth2.Token) error {
		return store.save(tok.RefreshToken)
	}}
	src, err := resume(ctx, cfg, store)
	if err != nil {
		return err
	}
	if src == nil {
		res, err := nativelogin.Login(ctx, cfg)
		if err != nil {
			return err
		}
		src = res.Source
		_, _ = fmt.Fprintln(out, "logged in; refresh token saved to", store.path)
	}
	defer src.Close()
	tok, err := src.TokenContext(ctx)
	if err != nil {
		return err
	}
	return printClaims(out, tok.AccessToken)
}

// resume returns a Source from the saved refresh token, or nil when there
// is none or the server no longer accepts it.
func resume(ctx context.Context, cfg nativelogin.Config, store tokenFile) (*refresh.Source, error) {
	rt, err := store.load()
	if err != nil || rt == "" {
		return nil, err
	}
	src, err := nativelogin.Resume(ctx, cfg, &oauth2.Token{RefreshToken: rt})
	if err != nil {
		return nil, err
	}
	if _, err := src.TokenContext(ctx); errors.Is(err, refresh.ErrReauthRequired) {
		src.Close()
		return nil, nil // expired, revoked or reused: log in again
	} else if err != nil {
		src.Close()
		return nil, err
	}
	return src, nil
}

// fileName names the file of one issuer and client.
func fileName(issuer, clientID string) string {
	sum := sha256.Sum256([]byte(issuer + "\x00" + clientID))
	return hex.EncodeToString(sum[:8]) + ".refresh-token"
}

// tokenFile keeps a refresh token in a file only its owner can read.
type tokenFile struct{ path string }

// load returns the saved refresh token, "" if none.
func (f tokenFile) load() (string, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return strings.TrimSpace(string(b)), err
}

// save replaces the saved refresh token in one step (a temporary file,
// 0600, renamed over the old one), so a crash never leaves half a token.
func (f tokenFile) save(rt string) error {
	if rt == "" {
		return nil // the server did not rotate it: the saved one stays
	}
	if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".refresh-token-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(rt + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), f.path)
}

// printClaims prints the claims of a JWT access token, one per line,
// without its signature; an opaque token is only reported as such.
func printClaims(out io.Writer, accessToken string) error {
	parts := strings.Split(accessToken, ".")
	var claims map[string]any
	if len(parts) != 3 {
		_, err := fmt.Fprintln(out, "the access token is opaque (not a JWT)")
		return err
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &claims) != nil {
		_, err := fmt.Fprintln(out, "the access token is opaque (its payload is not JSON)")
		return err
	}
	b, err := json.MarshalIndent(claims, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "access token claims:\n%s\n", b)
	return err
}
