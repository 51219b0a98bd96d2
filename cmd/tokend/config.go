package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
)

// settings are tokend serve's knobs. Each is set, in rising precedence, by
// its default, the YAML config file, a TOKEND_* environment variable and a
// flag, all under one name: the flag's (access-ttl: in the file,
// TOKEND_ACCESS_TTL in the environment, --access-ttl on the command line).
type settings struct {
	Addr            string
	Store           string
	StoreTimeout    time.Duration
	Issuer          string
	Audience        string
	AccessTTL       time.Duration
	RefreshIdle     time.Duration
	RefreshAbsolute time.Duration
	Grace           time.Duration
	KeyAlg          string
	GCInterval      time.Duration
	LogLevel        string
	AccessLog       bool
	MetricsAddr     string
	AdminAddr       string
	JWKSMaxAge      time.Duration
	KeyReload       time.Duration
	SessionTTL      time.Duration
	Templates       string

	// Encryption at rest (encryption.go); the keys themselves may instead
	// be in TOKEND_ENCRYPTION_KEY and TOKEND_ENCRYPTION_OLD_KEY.
	EncryptionKeyFile    string
	EncryptionOldKeyFile string

	// Password hashing: server.Config's HashMemory, HashQueue and
	// PasswordParams.
	HashMemory   int // MiB
	HashQueue    int
	Argon2Params string

	// Throttling of failures (server.Throttle).
	TrustedProxies   string
	ThrottleSource   int
	ThrottlePair     int
	ThrottleAccount  int
	ThrottleWindow   time.Duration
	ThrottleMaxDelay time.Duration
}

func defaultSettings() settings {
	return settings{
		Addr:            "127.0.0.1:8080",
		Store:           defaultStore,
		StoreTimeout:    store.DefaultTimeout,
		AccessTTL:       15 * time.Minute,
		RefreshIdle:     30 * 24 * time.Hour,
		RefreshAbsolute: 90 * 24 * time.Hour,
		Grace:           server.DefaultGrace,
		KeyAlg:          "EdDSA",
		GCInterval:      time.Minute,
		LogLevel:        "info",
		JWKSMaxAge:      time.Minute,
		KeyReload:       10 * time.Second,
		SessionTTL:      server.DefaultSessionTTL,

		HashMemory:   server.DefaultHashMemory >> 20,
		HashQueue:    server.DefaultHashQueue,
		Argon2Params: password.DefaultParams().String(),

		// server.Throttle's documented defaults.
		ThrottleSource:   50,
		ThrottlePair:     5,
		ThrottleAccount:  20,
		ThrottleWindow:   time.Hour,
		ThrottleMaxDelay: 15 * time.Minute,
	}
}

// storeTimeoutUsage describes --store-timeout, of serve and of the admin
// commands.
const storeTimeoutUsage = "longest a store call may take before it fails as unavailable (a database that holds its bytes): serve answers 503 with Retry-After, and /readyz reports not ready"

// defaultStore is the SQLite file in the working directory that serve
// creates and the admin commands find.
const defaultStore = "sqlite://tokend.db"

// setting binds one field to its name: the flag, the YAML key and, upper
// cased with - as _ and TOKEND_ before it, the environment variable.
type setting struct {
	name  string
	usage string
	ptr   any // *string, *time.Duration, *int or *bool
}

func (s *settings) table() []setting {
	return []setting{
		{"addr", "listen address HOST:PORT", &s.Addr},
		{"store", "store URL: sqlite:///abs/path.db, sqlite://relative.db, postgres://HOST/DB, redis://HOST:6379/0[?prefix=KEYPREFIX] or memory:", &s.Store},
		{"store-timeout", storeTimeoutUsage, &s.StoreTimeout},
		{"issuer", "issuer URL, in every token's iss (default http://ADDR; required if ADDR's host is empty, 0.0.0.0 or ::)", &s.Issuer},
		{"audience", "aud of every access token, the name resource servers check (default: the issuer)", &s.Audience},
		{"access-ttl", "access token lifetime", &s.AccessTTL},
		{"refresh-idle", "a refresh-token family unused this long ends", &s.RefreshIdle},
		{"refresh-absolute", "a refresh-token family ends this long after it started", &s.RefreshAbsolute},
		{"grace", "window in which a retried refresh token gets the same successor (0: none)", &s.Grace},
		{"key-alg", "signing algorithm of new keys: EdDSA or ES256", &s.KeyAlg},
		{"gc-interval", "how often ended families are deleted (by one instance of those sharing a PostgreSQL or Redis store)", &s.GCInterval},
		{"log-level", "debug, info, warn or error", &s.LogLevel},
		{"access-log", "log every request: method, path, status, client, latency", &s.AccessLog},
		{"metrics-addr", "serve /metrics on this HOST:PORT instead of addr (or admin-addr)", &s.MetricsAddr},
		{"admin-addr", "serve the admin plane, /v1 (mint, sessions) and /metrics, on this HOST:PORT instead of addr, which then answers 404 for them", &s.AdminAddr},
		{"jwks-max-age", "how long verifiers may cache the JWKS (and trust a withdrawn key)", &s.JWKSMaxAge},
		{"key-reload", "how often signing keys are re-read from the store (rotations and revocations by other processes)", &s.KeyReload},
		{"session-ttl", "how long a login at the login page logs its user in to every client without the form (single sign-on)", &s.SessionTTL},
		{"templates", "directory of templates and stylesheet that replace the login pages' defaults (layout.html, login.html, consent.html, error.html, logout.html, logged_out.html, style.css)", &s.Templates},
		{"encryption-key-file", "operator key file that seals signing keys and secrets at rest (or the key in base64 in " + envKey + ")", &s.EncryptionKeyFile},
		{"encryption-old-key-file", "previous operator key file, that only opens, while rotating or unsealing (or " + envOldKey + ")", &s.EncryptionOldKeyFile},

		{"hash-memory", "memory budget of concurrent password checks, in MiB", &s.HashMemory},
		{"hash-queue", "logins that may wait for hashing memory before 503 (negative: none)", &s.HashQueue},
		{"argon2-params", "argon2id parameters of new password hashes: m=KiB,t=passes,p=lanes", &s.Argon2Params},

		{"trusted-proxies", "comma-separated addresses or CIDRs of proxies whose X-Forwarded-For names the client (default: none, header ignored)", &s.TrustedProxies},
		{"throttle-source", "failed attempts one source address may make before it must wait", &s.ThrottleSource},
		{"throttle-pair", "failed attempts one source may make at one client or user before it must wait", &s.ThrottlePair},
		{"throttle-account", "failed passwords of one user, from anywhere, before sources she has not logged in from must wait", &s.ThrottleAccount},
		{"throttle-window", "time in which a limit's worth of failures is forgotten", &s.ThrottleWindow},
		{"throttle-max-delay", "longest wait after repeated failures (at most 24h)", &s.ThrottleMaxDelay},
	}
}

// applyHashing sets the password-hashing fields of c from s.
func (s *settings) applyHashing(c *server.Config) error {
	p, err := password.ParseParams(s.Argon2Params)
	if err != nil {
		return fmt.Errorf("argon2-params: %w", err)
	}
	c.PasswordParams, c.HashMemory, c.HashQueue = p, int64(s.HashMemory)<<20, s.HashQueue
	return nil
}

func envName(flagName string) string {
	return "TOKEND_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// value is a setting as a pflag.Value: it parses and prints the way the
// environment and the config file do, and its errors show a valid value.
type value struct {
	ptr     any
	example string // a valid value, for messages
}

func (v value) Set(s string) error { return parseInto(v.ptr, s, v.example) }

func (v value) String() string {
	switch p := v.ptr.(type) {
	case *string:
		return *p
	case *time.Duration:
		return fmtDuration(*p)
	case *int:
		return strconv.Itoa(*p)
	case *bool:
		return strconv.FormatBool(*p)
	}
	return ""
}

func (v value) Type() string {
	switch v.ptr.(type) {
	case *time.Duration:
		return "duration"
	case *int:
		return "int"
	case *bool:
		return "bool"
	}
	return "string"
}

// fmtDuration prints d without zero tails: 15m, 720h, 1h30m.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// registerSettings adds --config and a flag for each setting to fs, each
// showing its default, and returns where the flags' values land.
func registerSettings(fs *pflag.FlagSet, getenv func(string) string) (flagged *settings, config *string) {
	def := defaultSettings()
	flagged = &def
	config = fs.String("config", getenv("TOKEND_CONFIG"), "YAML config file whose keys are the flags' names, e.g. access-ttl: 15m (env TOKEND_CONFIG; example: tokend.example.yaml)")
	examples := defaultSettings()
	ex := examples.table()
	for i, st := range flagged.table() {
		f := fs.VarPF(value{st.ptr, exampleOf(ex[i])}, st.name, "", st.usage+" (env "+envName(st.name)+")")
		if _, ok := st.ptr.(*bool); ok {
			f.NoOptDefVal = "true"
		}
	}
	return flagged, config
}

// exampleOf returns a valid value of st for messages: its default, or one
// of its type.
func exampleOf(st setting) string {
	v := value{ptr: st.ptr}
	if s := v.String(); s != "" && s != "0" && s != "false" {
		return s
	}
	switch st.name {
	case "issuer":
		return "https://auth.example.com"
	case "audience":
		return "https://api.example.com"
	case "metrics-addr":
		return "127.0.0.1:9090"
	case "admin-addr":
		return "127.0.0.1:9091"
	case "trusted-proxies":
		return "10.0.0.0/8,192.0.2.7"
	case "encryption-key-file", "encryption-old-key-file":
		return "/etc/tokend/key"
	}
	return map[string]string{"bool": "true", "int": "5", "duration": "15m", "string": "text"}[v.Type()]
}

// loadSettings registers serve's flags on fs, parses args and resolves
// the settings (resolveSettings).
func loadSettings(fs *pflag.FlagSet, args []string, getenv func(string) string) (settings, error) {
	flagged, config := registerSettings(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return settings{}, err
	}
	if fs.NArg() > 0 {
		return settings{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return resolveSettings(fs, flagged, *config, getenv)
}

// resolveSettings layers the defaults, the config file, the environment
// and the flags set on fs (whose values are in flagged), then checks the
// result (settings.check).
func resolveSettings(fs *pflag.FlagSet, flagged *settings, config string, getenv func(string) string) (settings, error) {
	s := defaultSettings()
	ex := defaultSettings()
	table, flags, examples := s.table(), flagged.table(), ex.table()
	if config != "" {
		if err := s.loadFile(config); err != nil {
			return s, err
		}
	}
	for i, st := range table {
		if v := getenv(envName(st.name)); v != "" {
			if err := parseInto(st.ptr, v, exampleOf(examples[i])); err != nil {
				return s, fmt.Errorf("%s: %w", envName(st.name), err)
			}
		}
		if fs.Changed(st.name) {
			copyValue(st.ptr, flags[i].ptr)
		}
	}
	if fs.Changed("audience") && flagged.Audience == "" {
		return s, errors.New("audience must not be empty, such as https://api.example.com; leave it out for the issuer")
	}
	return s, s.check()
}

// loadFile reads the YAML config file at path into s: a mapping whose keys
// are the settings' names.
func (s *settings) loadFile(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(raw)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file, or only comments
		}
		hint := ""
		if strings.Contains(err.Error(), "mapping values are not allowed") {
			hint = ` (a value that ends in ":" must be quoted: store: "memory:")`
		}
		return fmt.Errorf("config file %s: %w%s", path, err, hint)
	}
	m := &doc
	if m.Kind == yaml.DocumentNode && len(m.Content) == 1 {
		m = m.Content[0]
	}
	if m.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s: want a mapping of settings, such as access-ttl: 15m", path)
	}
	ex := defaultSettings()
	byName := map[string]setting{}
	examples := map[string]string{}
	for _, st := range s.table() {
		byName[st.name] = st
	}
	for _, st := range ex.table() {
		examples[st.name] = exampleOf(st)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		st, ok := byName[k.Value]
		if !ok {
			if dashed := strings.ReplaceAll(k.Value, "_", "-"); byName[dashed].name != "" {
				return fmt.Errorf("config file %s line %d: %s is spelled %s, as the flag", path, k.Line, k.Value, dashed)
			}
			return fmt.Errorf("config file %s line %d: unknown setting %q (tokend serve -h lists them)", path, k.Line, k.Value)
		}
		if seen[k.Value] {
			return fmt.Errorf("config file %s line %d: %s is set twice", path, k.Line, k.Value)
		}
		seen[k.Value] = true
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" && v.Value == "" {
			return fmt.Errorf("config file %s line %d: %s: want a value such as %s", path, v.Line, k.Value, examples[k.Value])
		}
		if err := parseInto(st.ptr, v.Value, examples[k.Value]); err != nil {
			return fmt.Errorf("config file %s line %d: %s: %w", path, v.Line, k.Value, err)
		}
	}
	return nil
}

// parseInto parses v into ptr; a failure says what a valid value looks
// like.
func parseInto(ptr any, v, example string) error {
	switch p := ptr.(type) {
	case *string:
		*p = v
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("want a duration such as %s, not %q", example, v)
		}
		*p = d
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("want a whole number such as %s, not %q", example, v)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, not %q", v)
		}
		*p = b
	}
	return nil
}

func copyValue(dst, src any) {
	switch d := dst.(type) {
	case *string:
		*d = *src.(*string)
	case *time.Duration:
		*d = *src.(*time.Duration)
	case *int:
		*d = *src.(*int)
	case *bool:
		*d = *src.(*bool)
	}
}

// check refuses settings that cannot work, naming the setting and showing
// a valid value, and derives the issuer from addr and the audience from
// the issuer if they are not set.
func (s *settings) check() error {
	if err := s.checkIssuer(); err != nil {
		return err
	}
	// RFC 7519 section 4.1.3: aud is a StringOrURI. Blank or with spaces,
	// no resource server could name it.
	if s.Audience != "" && (strings.TrimSpace(s.Audience) == "" || strings.ContainsFunc(s.Audience, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })) {
		return fmt.Errorf("audience must be a name without spaces, such as https://api.example.com, not %q", s.Audience)
	}
	if s.Audience == "" {
		s.Audience = s.Issuer // empty with a port of 0: serve's issuer, server.Config's default
	}
	return nil
}

// checkIssuer is check without the audience.
func (s *settings) checkIssuer() error {
	def := defaultSettings()
	for _, d := range s.durations() { // bounds.go
		if d.got <= 0 {
			return fmt.Errorf("%s must be positive, such as %s, not %s", d.name, fmtDuration(d.want), fmtDuration(d.got))
		}
	}
	if s.Grace < 0 {
		return fmt.Errorf("grace must be 0 (none) or positive, such as %s, not %s", fmtDuration(def.Grace), fmtDuration(s.Grace))
	}
	if s.ThrottleMaxDelay > 24*time.Hour {
		return fmt.Errorf("throttle-max-delay must be at most 24h, not %s", fmtDuration(s.ThrottleMaxDelay))
	}
	for _, n := range []struct {
		name      string
		got, want int
	}{
		{"hash-memory", s.HashMemory, def.HashMemory}, {"throttle-source", s.ThrottleSource, def.ThrottleSource},
		{"throttle-pair", s.ThrottlePair, def.ThrottlePair}, {"throttle-account", s.ThrottleAccount, def.ThrottleAccount},
	} {
		if n.got <= 0 {
			return fmt.Errorf("%s must be positive, such as %d, not %d", n.name, n.want, n.got)
		}
	}
	if err := s.checkBounds(); err != nil { // bounds.go
		return err
	}
	if s.KeyAlg != "EdDSA" && s.KeyAlg != "ES256" {
		return fmt.Errorf("key-alg must be EdDSA or ES256, not %q", s.KeyAlg)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(s.LogLevel)); err != nil {
		return fmt.Errorf("log-level must be debug, info, warn or error, not %q", s.LogLevel)
	}
	if _, err := password.ParseParams(s.Argon2Params); err != nil {
		return fmt.Errorf("argon2-params: %w (such as %s)", err, def.Argon2Params)
	}
	if _, err := parseTrustedProxies(s.TrustedProxies); err != nil {
		return err
	}
	if _, err := parseStoreURL(s.Store); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	host, err := checkAddr("addr", s.Addr, def.Addr)
	if err != nil {
		return err
	}
	if err := s.checkListeners(); err != nil {
		return err
	}
	if s.Issuer == "" {
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			return fmt.Errorf("issuer is required when addr %s listens on every interface: tokend cannot tell the URL clients reach it by (such as --issuer https://auth.example.com)", s.Addr)
		}
		// A port of 0 is chosen when serve listens: serve sets the issuer.
		if _, port, _ := net.SplitHostPort(s.Addr); port != "0" {
			s.Issuer = "http://" + s.Addr
		}
		return nil
	}
	u, err := url.Parse(s.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		// RFC 8414 section 2: an https URL with no query or fragment
		// (http allowed here for local use).
		return fmt.Errorf("issuer must be an http(s) URL with a host and no query or fragment, such as https://auth.example.com, not %q", s.Issuer)
	}
	s.Issuer = strings.TrimRight(s.Issuer, "/")
	return nil
}

// checkListeners checks metrics-addr and admin-addr, and refuses two
// listeners on one address (a port of 0 is a new one each time). With both
// set, /metrics is on metrics-addr and /v1 on admin-addr.
func (s *settings) checkListeners() error {
	addrs := []struct{ name, addr, example string }{{"addr", s.Addr, ""}, {"admin-addr", s.AdminAddr, "127.0.0.1:9091"}, {"metrics-addr", s.MetricsAddr, "127.0.0.1:9090"}}
	for i, a := range addrs {
		if a.addr == "" || i == 0 {
			continue
		}
		if _, err := checkAddr(a.name, a.addr, a.example); err != nil {
			return err
		}
		for _, b := range addrs[:i] {
			if _, port, _ := net.SplitHostPort(a.addr); a.addr == b.addr && port != "0" {
				return fmt.Errorf("%s and %s are both %s: each needs an address of its own (admin-addr takes /v1 and /metrics off addr; metrics-addr takes /metrics off both)", b.name, a.name, a.addr)
			}
		}
	}
	return nil
}

// checkAddr checks a HOST:PORT setting and returns its host.
func checkAddr(name, addr, example string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		var n int
		n, err = strconv.Atoi(port)
		if err == nil && (n < 0 || n > 65535) {
			err = errors.New("bad port")
		}
	}
	if err != nil {
		return "", fmt.Errorf("%s must be HOST:PORT, such as %s, not %q", name, example, addr)
	}
	return host, nil
}
