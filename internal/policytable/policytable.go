// Package policytable reads docs/client-policy.md, the table of the
// clients' defaults, so that the tests of the Go clients can check their
// defaults against it. The file's "Format" section describes the table.
package policytable

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Row is one setting of the table.
type Row struct {
	// Key names the setting, such as "backoff.cap".
	Key string
	// Go and Browser are the values: the code span each value cell starts
	// with, without its backquotes.
	Go, Browser string
	// Why is the last cell: why the values differ; "" when they agree.
	Why string
}

// ErrFormat reports a table row that does not follow the format.
var ErrFormat = errors.New("policytable: malformed row")

// Read returns the rows of every table in the Markdown file at path, by
// key. A row whose first cell does not start with a code span (a header)
// and a separator row are skipped.
func Read(path string) (map[string]Row, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policytable: %w", err)
	}
	rows := map[string]Row{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|---") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		key, ok := span(cells[0])
		if !ok {
			continue // a header
		}
		if len(cells) != 4 {
			return nil, fmt.Errorf("%w: line %d has %d cells, want 4", ErrFormat, i+1, len(cells))
		}
		g, okG := span(cells[1])
		w, okW := span(cells[2])
		if !okG || !okW {
			return nil, fmt.Errorf("%w: line %d: a value cell does not start with a code span", ErrFormat, i+1)
		}
		if _, dup := rows[key]; dup {
			return nil, fmt.Errorf("%w: line %d repeats %q", ErrFormat, i+1, key)
		}
		rows[key] = Row{Key: key, Go: g, Browser: w, Why: strings.TrimSpace(cells[3])}
	}
	return rows, nil
}

// span returns the code span cell starts with.
func span(cell string) (string, bool) {
	cell = strings.TrimSpace(cell)
	if !strings.HasPrefix(cell, "`") {
		return "", false
	}
	end := strings.Index(cell[1:], "`")
	if end < 0 {
		return "", false
	}
	return cell[1 : 1+end], true
}

// Eval evaluates a value expression: durations such as 250ms, 5s or 1m,
// plain numbers, the variables in vars (lifetime, lead), + - × / (or *),
// parentheses, min(a, b) and max(a, b). A plain number times a duration
// is a duration.
func Eval(expr string, vars map[string]time.Duration) (time.Duration, error) {
	p := &parser{s: expr, vars: vars}
	v, err := p.sum()
	if err == nil && p.peek() != 0 {
		err = fmt.Errorf("unexpected %q", p.s[p.i:])
	}
	if err != nil {
		return 0, fmt.Errorf("policytable: %q: %w", expr, err)
	}
	return time.Duration(v), nil
}

type parser struct {
	s    string
	i    int
	vars map[string]time.Duration
}

// peek skips spaces and returns the next rune, or 0 at the end.
func (p *parser) peek() rune {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
	for _, r := range p.s[p.i:] {
		return r
	}
	return 0
}

func (p *parser) eat(r rune) bool {
	if p.peek() != r {
		return false
	}
	p.i += len(string(r))
	return true
}

func (p *parser) sum() (float64, error) {
	v, err := p.product()
	for err == nil {
		var w float64
		switch {
		case p.eat('+'):
			w, err = p.product()
			v += w
		case p.eat('-'):
			w, err = p.product()
			v -= w
		default:
			return v, nil
		}
	}
	return 0, err
}

func (p *parser) product() (float64, error) {
	v, err := p.factor()
	for err == nil {
		var w float64
		switch {
		case p.eat('×'), p.eat('*'):
			w, err = p.factor()
			v *= w
		case p.eat('/'):
			w, err = p.factor()
			v /= w
		default:
			return v, nil
		}
	}
	return 0, err
}

func (p *parser) factor() (float64, error) {
	r := p.peek()
	switch {
	case r == '(':
		p.i++
		v, err := p.sum()
		if err == nil && !p.eat(')') {
			err = errors.New("missing )")
		}
		return v, err
	case unicode.IsDigit(r):
		start := p.i
		for p.i < len(p.s) && (unicode.IsDigit(rune(p.s[p.i])) || p.s[p.i] == '.') {
			p.i++
		}
		num := p.s[start:p.i]
		unit := p.word()
		if unit == "" {
			return strconv.ParseFloat(num, 64)
		}
		d, err := time.ParseDuration(num + unit)
		return float64(d), err
	case unicode.IsLetter(r):
		w := p.word()
		if w == "min" || w == "max" {
			if !p.eat('(') {
				return 0, fmt.Errorf("%s without (", w)
			}
			a, err := p.sum()
			if err != nil {
				return 0, err
			}
			if !p.eat(',') {
				return 0, fmt.Errorf("%s with one argument", w)
			}
			b, err := p.sum()
			if err != nil {
				return 0, err
			}
			if !p.eat(')') {
				return 0, fmt.Errorf("%s without )", w)
			}
			if w == "min" {
				return min(a, b), nil
			}
			return max(a, b), nil
		}
		v, ok := p.vars[w]
		if !ok {
			return 0, fmt.Errorf("unknown name %q", w)
		}
		return float64(v), nil
	}
	return 0, fmt.Errorf("unexpected %q", p.s[p.i:])
}

// word reads a run of ASCII letters.
func (p *parser) word() string {
	start := p.i
	for p.i < len(p.s) && (p.s[p.i] >= 'a' && p.s[p.i] <= 'z' || p.s[p.i] >= 'A' && p.s[p.i] <= 'Z') {
		p.i++
	}
	return p.s[start:p.i]
}
