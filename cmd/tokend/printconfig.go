package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// printSettings writes cfg, the effective settings of serve, to w as a
// YAML config file that serve could read back (--config), in the order of
// `tokend serve -h`, each with a comment naming where it came from: the
// flag, the TOKEND_* variable, the config file or the default. Secrets are
// redacted: the store URL's (redacted), and an operator key given in the
// environment is named, never shown; the key files are paths.
func printSettings(w io.Writer, cfg settings, fs *pflag.FlagSet, config string, getenv func(string) string) error {
	def := defaultSettings()
	defs := def.table()
	var body strings.Builder
	for i, st := range cfg.table() {
		v := value{ptr: st.ptr}.String()
		if st.name == "store" {
			v = redacted(v)
		}
		from := "default"
		switch {
		case fs.Changed(st.name):
			from = "--" + st.name
		case getenv(envName(st.name)) != "":
			from = envName(st.name)
		case st.name == "issuer" || st.name == "audience":
			from = "derived from addr, or the config file"
			if st.name == "audience" {
				from = "the issuer, or the config file"
			}
		case v != (value{ptr: defs[i].ptr}.String()):
			from = "config file"
		}
		if st.name == "store" && v != cfg.Store {
			from += "; secrets shown as " + mask
		}
		if v == "" {
			// An empty value would not read back: the setting is unset.
			if st.name == "issuer" || st.name == "audience" {
				from = "the listener's address, when it listens"
			}
			fmt.Fprintf(&body, "# %s: unset (%s)\n", st.name, from)
			continue
		}
		if _, ok := st.ptr.(*string); ok { // quoted if YAML needs it
			q, err := yaml.Marshal(v)
			if err != nil {
				return err
			}
			v = strings.TrimSuffix(string(q), "\n")
		}
		fmt.Fprintf(&body, "%s: %s  # %s\n", st.name, v, from)
	}
	head := "# tokend serve: the effective settings"
	if config != "" {
		head += ", with the config file " + config
	}
	fmt.Fprintln(w, head)
	for _, e := range []string{envKey, envOldKey} {
		if getenv(e) != "" {
			fmt.Fprintf(w, "# an operator key is set in %s (not shown)\n", e)
		}
	}
	_, err := io.WriteString(w, body.String())
	return err
}
