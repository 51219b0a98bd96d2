package storetest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a TCP proxy on loopback between a store and its database
// server, which a test cuts, or stalls, and restores to simulate an
// outage without stopping the (shared) server.
//
// Cut is a failure the client sees: every connection is closed. Stall is
// one it does not: a network partition that holds packets rather than
// resetting connections. Connections stay open, the bytes sent on them
// are held (not forwarded, not dropped), and new connections are
// accepted and held too; after Restore the held bytes go through, late,
// as a healed partition delivers them.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	cut     bool
	flowing chan struct{}         // closed unless stalled
	conns   map[net.Conn]struct{} // both ends of every open pair
	pairs   map[net.Conn]struct{} // the client end of every pair
	done    chan struct{}         // closed when the test ends
	wg      sync.WaitGroup
	accepts atomic.Int64
}

// NewProxy listens on 127.0.0.1:0 and forwards every connection to target
// (host:port). It is closed, with all its connections, when t ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	flowing := make(chan struct{})
	close(flowing)
	p := &Proxy{ln: ln, target: target, flowing: flowing, conns: map[net.Conn]struct{}{}, pairs: map[net.Conn]struct{}{},
		done: make(chan struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		close(p.done)
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Accepted is how many connections the proxy has accepted so far.
func (p *Proxy) Accepted() int64 { return p.accepts.Load() }

// Open is how many client connections are open (forwarded, or held by a
// stall).
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pairs)
}

// Cut closes every open connection, both ends, and closes each new one as
// soon as it is accepted until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
	clear(p.pairs)
}

// Stall holds every byte sent either way, on open connections and on
// those accepted until Restore, without closing any.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.flowing:
		p.flowing = make(chan struct{})
	default: // stalled already
	}
}

// Restore forwards again, after a Cut or a Stall: held bytes first.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	select {
	case <-p.flowing:
	default:
		close(p.flowing)
	}
}

// wait returns once bytes flow (not stalled), or false when the test
// ends.
func (p *Proxy) wait() bool {
	p.mu.Lock()
	flowing := p.flowing
	p.mu.Unlock()
	select {
	case <-flowing:
		return true
	case <-p.done:
		return false
	}
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepts.Add(1)
		p.wg.Go(func() { p.serve(c) })
	}
}

func (p *Proxy) serve(c net.Conn) {
	if !p.track(c, true) {
		_ = c.Close()
		return
	}
	// A stall holds a new connection before it reaches the server.
	if !p.wait() {
		p.close(c)
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil || !p.track(up, false) {
		if up != nil {
			_ = up.Close()
		}
		p.close(c)
		return
	}
	done := make(chan struct{})
	go func() {
		p.pipe(up, c)
		close(done)
	}()
	p.pipe(c, up)
	<-done
	p.close(c)
	p.close(up)
}

// track records c as open, or reports false while the proxy is cut.
func (p *Proxy) track(c net.Conn, client bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	p.conns[c] = struct{}{}
	if client {
		p.pairs[c] = struct{}{}
	}
	return true
}

func (p *Proxy) close(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.pairs, c)
	p.mu.Unlock()
	_ = c.Close()
}

// pipe copies from src to dst, then closes both, so that the other
// direction ends too. While the proxy is stalled it holds what it has
// read, and the end of src too: a partition delivers neither.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer func() {
		_ = dst.Close()
		_ = src.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if !p.wait() {
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
