package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/server"
)

// settings are tokend serve's knobs. Each is set, in rising precedence, by
// its default, the YAML config file, a TOKEND_* environment variable and a
// flag.
type settings struct {
	Addr            string        `yaml:"addr"`
	Store           string        `yaml:"store"`
	Issuer          string        `yaml:"issuer"`
	AccessTTL       time.Duration `yaml:"access_ttl"`
	RefreshIdle     time.Duration `yaml:"refresh_idle"`
	RefreshAbsolute time.Duration `yaml:"refresh_absolute"`
	Grace           time.Duration `yaml:"grace"`
	KeyAlg          string        `yaml:"key_alg"`
	GCInterval      time.Duration `yaml:"gc_interval"`
	LogLevel        string        `yaml:"log_level"`
	AccessLog       bool          `yaml:"access_log"`
	MetricsAddr     string        `yaml:"metrics_addr"`
	JWKSMaxAge      time.Duration `yaml:"jwks_max_age"`
	KeyReload       time.Duration `yaml:"key_reload"`

	// Encryption at rest (encryption.go); the keys themselves may instead
	// be in TOKEND_ENCRYPTION_KEY and TOKEND_ENCRYPTION_OLD_KEY.
	EncryptionKeyFile    string `yaml:"encryption_key_file"`
	EncryptionOldKeyFile string `yaml:"encryption_old_key_file"`

	// Password hashing: server.Config's HashMemory, HashQueue and
	// PasswordParams.
	HashMemory   int    `yaml:"hash_memory"` // MiB
	HashQueue    int    `yaml:"hash_queue"`
	Argon2Params string `yaml:"argon2_params"`

	// Throttling of failures (server.Throttle); zero means the server's
	// default.
	TrustedProxies   string        `yaml:"trusted_proxies"`
	ThrottleSource   int           `yaml:"throttle_source"`
	ThrottlePair     int           `yaml:"throttle_pair"`
	ThrottleAccount  int           `yaml:"throttle_account"`
	ThrottleWindow   time.Duration `yaml:"throttle_window"`
	ThrottleMaxDelay time.Duration `yaml:"throttle_max_delay"`
}

func defaultSettings() settings {
	return settings{
		Addr:            "127.0.0.1:8080",
		Store:           defaultStore,
		AccessTTL:       15 * time.Minute,
		RefreshIdle:     30 * 24 * time.Hour,
		RefreshAbsolute: 90 * 24 * time.Hour,
		Grace:           server.DefaultGrace,
		KeyAlg:          "EdDSA",
		GCInterval:      time.Minute,
		LogLevel:        "info",
		JWKSMaxAge:      time.Minute,
		KeyReload:       10 * time.Second,

		HashMemory:   server.DefaultHashMemory >> 20,
		HashQueue:    server.DefaultHashQueue,
		Argon2Params: password.DefaultParams().String(),
	}
}

// defaultStore is the SQLite file in the working directory that serve
// creates and the admin commands find.
const defaultStore = "sqlite://tokend.db"

// setting binds one field to its flag and environment variable.
type setting struct {
	name  string // flag name; the variable is TOKEND_ + upper-cased name with - as _
	usage string
	ptr   any // *string, *time.Duration, *float64, *int or *bool
}

func (s *settings) table() []setting {
	return []setting{
		{"addr", "listen address HOST:PORT", &s.Addr},
		{"store", "store URL: sqlite:///path/tokend.db, sqlite://relative.db or memory:", &s.Store},
		{"issuer", "issuer URL (default http://ADDR)", &s.Issuer},
		{"access-ttl", "access token lifetime", &s.AccessTTL},
		{"refresh-idle", "a refresh-token family unused this long ends", &s.RefreshIdle},
		{"refresh-absolute", "a refresh-token family ends this long after login", &s.RefreshAbsolute},
		{"grace", "window in which a retried refresh token gets the same successor", &s.Grace},
		{"key-alg", "signing algorithm of new keys: EdDSA or ES256", &s.KeyAlg},
		{"gc-interval", "how often ended families are deleted", &s.GCInterval},
		{"log-level", "debug, info, warn or error", &s.LogLevel},
		{"access-log", "log every request: method, path, status, client, latency", &s.AccessLog},
		{"metrics-addr", "serve /metrics on this HOST:PORT instead of addr", &s.MetricsAddr},
		{"jwks-max-age", "how long verifiers may cache the JWKS (and trust a withdrawn key)", &s.JWKSMaxAge},
		{"key-reload", "how often signing keys are re-read from the store (rotations and revocations by other processes)", &s.KeyReload},
		{"encryption-key-file", "operator key file that seals signing keys and secrets at rest (or the key in base64 in TOKEND_ENCRYPTION_KEY)", &s.EncryptionKeyFile},
		{"encryption-old-key-file", "previous operator key file, that only opens, while rotating or unsealing (or TOKEND_ENCRYPTION_OLD_KEY)", &s.EncryptionOldKeyFile},

		{"hash-memory", "memory budget of concurrent password checks, in MiB", &s.HashMemory},
		{"hash-queue", "logins that may wait for hashing memory before 503 (negative: none)", &s.HashQueue},
		{"argon2-params", "argon2id parameters of new password hashes: m=KiB,t=passes,p=lanes", &s.Argon2Params},

		{"trusted-proxies", "comma-separated addresses or CIDRs of proxies whose X-Forwarded-For names the client (default: none, header ignored)", &s.TrustedProxies},
		{"throttle-source", "failed attempts one source address may make before it must wait (default 50)", &s.ThrottleSource},
		{"throttle-pair", "failed attempts one source may make at one client or user before it must wait (default 5)", &s.ThrottlePair},
		{"throttle-account", "failed attempts at one client or user, from anywhere, before sources it has not logged in from must wait (default 20)", &s.ThrottleAccount},
		{"throttle-window", "time in which a limit's worth of failures is forgotten (default 1h)", &s.ThrottleWindow},
		{"throttle-max-delay", "longest wait after repeated failures (default 15m)", &s.ThrottleMaxDelay},
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

// loadSettings resolves serve's settings from args, the environment and the
// config file named by --config or TOKEND_CONFIG.
func loadSettings(fs *flag.FlagSet, args []string, getenv func(string) string) (settings, error) {
	s := defaultSettings()
	var flagged settings
	config := fs.String("config", getenv("TOKEND_CONFIG"), "YAML config file (env TOKEND_CONFIG)")
	for _, st := range flagged.table() {
		usage := st.usage + " (env " + envName(st.name) + ")"
		switch p := st.ptr.(type) {
		case *string:
			fs.StringVar(p, st.name, "", usage)
		case *time.Duration:
			fs.DurationVar(p, st.name, 0, usage)
		case *float64:
			fs.Float64Var(p, st.name, 0, usage)
		case *int:
			fs.IntVar(p, st.name, 0, usage)
		case *bool:
			fs.BoolVar(p, st.name, false, usage)
		}
	}
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *config != "" {
		raw, err := os.ReadFile(*config)
		if err != nil {
			return s, fmt.Errorf("config file: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(raw)))
		dec.KnownFields(true)
		if err := dec.Decode(&s); err != nil {
			return s, fmt.Errorf("config file %s: %w", *config, err)
		}
	}
	table, flags := s.table(), flagged.table()
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for i, st := range table {
		if v := getenv(envName(st.name)); v != "" {
			if err := parseInto(st.ptr, v); err != nil {
				return s, fmt.Errorf("%s: %w", envName(st.name), err)
			}
		}
		if set[st.name] {
			copyValue(st.ptr, flags[i].ptr)
		}
	}
	def := defaultSettings()
	for _, d := range []struct {
		name      string
		got, want time.Duration
	}{{"gc-interval", s.GCInterval, def.GCInterval}, {"key-reload", s.KeyReload, def.KeyReload}, {"jwks-max-age", s.JWKSMaxAge, def.JWKSMaxAge}} {
		if d.got <= 0 {
			return s, fmt.Errorf("%s must be positive (e.g. %s), not %s", d.name, d.want, d.got)
		}
	}
	if s.Issuer == "" {
		s.Issuer = "http://" + s.Addr
	}
	s.Issuer = strings.TrimRight(s.Issuer, "/")
	if _, err := password.ParseParams(s.Argon2Params); err != nil {
		return s, fmt.Errorf("argon2-params: %w", err)
	}
	return s, nil
}

func parseInto(ptr any, v string) error {
	switch p := ptr.(type) {
	case *string:
		*p = v
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		*p = d
	case *float64:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return err
		}
		*p = f
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return err
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return err
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
	case *float64:
		*d = *src.(*float64)
	case *int:
		*d = *src.(*int)
	case *bool:
		*d = *src.(*bool)
	}
}
