package nativelogin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
)

// OpenSystemBrowser opens u in the user's default browser, as RFC 8252
// §4 asks of native apps (never an embedded web view): xdg-open on Linux
// and the BSDs when a graphical session is there (DISPLAY or
// WAYLAND_DISPLAY is set; without one xdg-open might start a text
// browser on the terminal), open on macOS, rundll32's
// FileProtocolHandler on Windows. It returns ErrNoBrowser when there is
// none to start, and the command's error when it fails. It is the
// default of Config.OpenBrowser.
func OpenSystemBrowser(ctx context.Context, u string) error {
	var name string
	var args []string
	switch runtime.GOOS {
	case "darwin":
		name, args = "open", []string{u}
	case "windows":
		name, args = "rundll32", []string{"url.dll,FileProtocolHandler", u}
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly", "illumos", "solaris":
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return fmt.Errorf("%w: no graphical session", ErrNoBrowser)
		}
		name, args = "xdg-open", []string{u}
	default:
		return fmt.Errorf("%w: %s", ErrNoBrowser, runtime.GOOS)
	}
	if _, err := exec.LookPath(name); err != nil {
		return fmt.Errorf("%w: %s not found", ErrNoBrowser, name)
	}
	// The URL is not in the error: it is long and carries the state.
	if err := exec.CommandContext(ctx, name, args...).Run(); err != nil {
		return fmt.Errorf("nativelogin: %s: %w", name, err)
	}
	return nil
}
