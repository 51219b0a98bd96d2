package nativelogin

import "net"

// WithListen returns c opening its redirect listener with listen.
func WithListen(c Config, listen func(network, addr string) (net.Listener, error)) Config {
	c.listen = listen
	return c
}
