package loginpage

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

//go:embed templates
var defaults embed.FS

// File names of the templates and the stylesheet, as the embedded
// defaults and an operator's directory (Options.Dir) hold them.
const (
	fileLayout    = "layout.html"
	fileLogin     = "login.html"
	fileConsent   = "consent.html"
	fileError     = "error.html"
	fileLogout    = "logout.html"
	fileLoggedOut = "logged_out.html"
	fileStyle     = "style.css"
)

// pageFiles are the templates a Pages renders, each parsed with layout.html.
var pageFiles = []string{fileLogin, fileConsent, fileError, fileLogout, fileLoggedOut}

// DefaultStylePath is where the stylesheet is served when
// Options.StylePath is empty.
const DefaultStylePath = "/login/style.css"

// Options configure New.
type Options struct {
	// Dir is an operator's template directory (`tokend serve --templates
	// DIR`): each of layout.html, login.html, consent.html, error.html,
	// logout.html, logged_out.html and style.css found there replaces the
	// embedded default of that name; other files are ignored. "" means
	// the defaults alone.
	Dir string
	// StylePath is the URL path at which the caller serves StyleHandler
	// ("": DefaultStylePath); pages link the stylesheet there.
	StylePath string
}

// Pages renders the authorization server's HTML pages. It holds no flow
// logic: the caller decides which page to show, with what, and which
// status, and keeps every secret out of the data. It is safe for
// concurrent use.
type Pages struct {
	tmpl     map[string]*template.Template // by file name
	style    []byte
	styleTag string // content hash of style, hex
	styleURL string
	bufs     sync.Pool // of *bytes.Buffer
}

// New loads the embedded templates and stylesheet, then those of
// opts.Dir, and renders every page with sample data, with and without an
// error, so that a template that does not parse or execute fails here
// and not at a user's request. The error names the file.
func New(opts Options) (*Pages, error) {
	src, err := sources(opts.Dir)
	if err != nil {
		return nil, err
	}
	p := &Pages{tmpl: make(map[string]*template.Template, len(pageFiles))}
	p.style, err = src.read(fileStyle)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(p.style)
	p.styleTag = hex.EncodeToString(sum[:8])
	p.styleURL = opts.StylePath
	if p.styleURL == "" {
		p.styleURL = DefaultStylePath
	}
	p.styleURL += "?v=" + p.styleTag
	layout, err := src.read(fileLayout)
	if err != nil {
		return nil, err
	}
	for _, name := range pageFiles {
		if p.tmpl[name], err = src.parse(name, layout); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// templateSource reads a file from the operator's directory if it is
// there, else from the embedded defaults.
type templateSource struct {
	dir  fs.FS  // nil: defaults only
	path string // the directory, for errors
}

// sources opens the operator's directory, which must exist if named.
func sources(dir string) (templateSource, error) {
	if dir == "" {
		return templateSource{}, nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return templateSource{}, fmt.Errorf("loginpage: template directory: %w", err)
	}
	if !st.IsDir() {
		return templateSource{}, fmt.Errorf("loginpage: template directory %s is not a directory", dir)
	}
	return templateSource{dir: os.DirFS(dir), path: dir}, nil
}

// origin names where file comes from, for errors.
func (s templateSource) origin(file string) string {
	if s.dir != nil {
		if _, err := fs.Stat(s.dir, file); err == nil {
			return s.path + string(os.PathSeparator) + file
		}
	}
	return "default " + file
}

func (s templateSource) read(file string) ([]byte, error) {
	if s.dir != nil {
		b, err := fs.ReadFile(s.dir, file)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("loginpage: %s: %w", s.origin(file), err)
		}
	}
	return defaults.ReadFile("templates/" + file)
}

// parse parses the page file name beside the layout; executing the
// result by name renders the page.
func (s templateSource) parse(name string, layout []byte) (*template.Template, error) {
	page, err := s.read(name)
	if err != nil {
		return nil, err
	}
	t, err := template.New(fileLayout).Parse(string(layout))
	if err != nil {
		return nil, fmt.Errorf("loginpage: %s: %w", s.origin(fileLayout), err)
	}
	if t, err = t.New(name).Parse(string(page)); err != nil {
		return nil, fmt.Errorf("loginpage: %s: %w", s.origin(name), err)
	}
	// Execute with sample data, with and without an error, so that an
	// escaping or execution error shows at start (html/template escapes
	// on the first execution).
	for _, withError := range []bool{false, true} {
		if err := t.Execute(io.Discard, sampleData(name, withError)); err != nil {
			return nil, fmt.Errorf("loginpage: %s: %w", s.origin(name), err)
		}
	}
	return t, nil
}

// StyleURL is the stylesheet's URL as the pages link it: the style path
// with the content hash as its query (?v=…), which StyleHandler answers
// as immutable.
func (p *Pages) StyleURL() string { return p.styleURL }

// StyleHandler serves the stylesheet (GET and HEAD) at the path the
// caller mounts it on (Options.StylePath). A request whose ?v= is the
// stylesheet's current hash may be cached for a year (immutable); any
// other must revalidate (ETag).
func (p *Pages) StyleHandler() http.Handler {
	etag := `"` + p.styleTag + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/css; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("ETag", etag)
		if r.URL.Query().Get("v") == p.styleTag {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(p.style))
	})
}

// render executes the page into a buffer, then writes the headers
// (Headers, with formTargets), status and page. On an error nothing is
// written.
func (p *Pages) render(w http.ResponseWriter, status int, name string, data any, formTargets []string) error {
	buf, _ := p.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer func() {
		buf.Reset()
		p.bufs.Put(buf)
	}()
	if err := p.tmpl[name].Execute(buf, data); err != nil {
		return fmt.Errorf("loginpage: render %s: %w", name, err)
	}
	Headers(w, formTargets...)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("loginpage: write %s: %w", name, err)
	}
	return nil
}
