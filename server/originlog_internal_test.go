package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/internal/clocktest"
)

// The table of logged pairs never holds more than refusalMax: when it is
// full of recent pairs, a new pair is not logged; once they are older than
// refusalEvery, it is, and the old ones are dropped. A long origin is cut.
func TestRefusalLogBounded(t *testing.T) {
	clk := clocktest.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	var buf bytes.Buffer
	l := newRefusalLog(slog.New(slog.NewTextHandler(&buf, nil)), clk.Now)
	ctx := context.Background()
	for i := range refusalMax {
		l.refused(ctx, fmt.Sprintf("https://o%d.example", i), "app", "/oauth/token", "test")
	}
	if n := strings.Count(buf.String(), "\n"); n != refusalMax {
		t.Fatalf("%d lines for %d pairs", n, refusalMax)
	}
	buf.Reset()
	l.refused(ctx, "https://new.example", "app", "/oauth/token", "test")
	if buf.Len() != 0 || len(l.last) != refusalMax {
		t.Fatalf("a full table logged a new pair (%d pairs): %s", len(l.last), buf.String())
	}
	clk.Advance(refusalEvery)
	l.refused(ctx, "https://new.example", "app", "/oauth/token", "test")
	if !strings.Contains(buf.String(), "origin=https://new.example") || len(l.last) != 1 {
		t.Fatalf("after a minute: %d pairs, log %q", len(l.last), buf.String())
	}
	buf.Reset()
	l.refused(ctx, "https://"+strings.Repeat("x", 1000)+".example", "app", "/oauth/token", "test")
	if buf.Len() > 600 || !strings.Contains(buf.String(), "…") {
		t.Fatalf("a long origin is logged whole: %d bytes", buf.Len())
	}
}
