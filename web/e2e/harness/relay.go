package main

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// relay forwards TCP connections to the app origin byte for byte; the
// tests open WebSockets through it (origin "wsRelay"). POST /ws-stall on
// the control port makes the connections open at that moment stop
// forwarding in both directions without closing: what arrives from either
// side is read and dropped, as by a NAT that forgot the flow or a hung
// middlebox. Connections opened later forward normally. A stalled
// connection ends only when one side closes its TCP connection.
type relay struct {
	target string // host:port of the app origin
	logger *slog.Logger

	mu    sync.Mutex
	conns map[*relayConn]struct{}
}

// relayConn is one relayed connection.
type relayConn struct {
	stalled atomic.Bool
}

func newRelay(target string, logger *slog.Logger) *relay {
	return &relay{target: target, logger: logger, conns: map[*relayConn]struct{}{}}
}

// serve accepts connections on ln until it is closed.
func (r *relay) serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go r.handle(c)
	}
}

func (r *relay) handle(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", r.target)
	if err != nil {
		r.logger.Warn("relay: dial", "err", err)
		return
	}
	defer up.Close()
	rc := &relayConn{}
	r.mu.Lock()
	r.conns[rc] = struct{}{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.conns, rc)
		r.mu.Unlock()
	}()
	done := make(chan struct{}, 2)
	go func() { rc.pipe(up, c); done <- struct{}{} }()
	go func() { rc.pipe(c, up); done <- struct{}{} }()
	<-done // one side ended: end both (the deferred Closes), then wait for the other copy
	c.Close()
	up.Close()
	<-done
}

// pipe copies src to dst until either fails, dropping what it reads once
// the connection is stalled.
func (rc *relayConn) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !rc.stalled.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// stall stops forwarding on every open connection and says how many.
func (r *relay) stall() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for rc := range r.conns {
		rc.stalled.Store(true)
	}
	return len(r.conns)
}

func (r *relay) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /ws-stall", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]int{"stalled": r.stall()})
	})
}
