package wsconn_test

import (
	"context"
	"errors"
	"log/slog"

	"github.com/tokend/tokend/refresh"
	"github.com/tokend/tokend/wsconn"
)

// An application that wants at-least-once delivery writes again what a
// lost connection had not confirmed; wsconn itself never sends a message
// twice. OnDisconnect runs on the Conn's goroutine, so the messages are
// handed to the application's own goroutine rather than written there.
func ExampleUndeliveredError() {
	ctx := context.Background()
	var src *refresh.Source // the application's token source
	resend := make(chan wsconn.Message, 1024)
	conn, err := wsconn.Dial(ctx, "wss://chat.example/ws", src, &wsconn.Options{
		OnDisconnect: func(err error) {
			if errors.Is(err, wsconn.ErrDeadConnection) {
				slog.Warn("connection dead; reconnecting", "err", err)
			}
			var u *wsconn.UndeliveredError
			if errors.As(err, &u) {
				for _, m := range u.Messages {
					resend <- m
				}
			}
		},
	})
	if err != nil {
		return
	}
	defer conn.Close()
	go func() {
		for m := range resend {
			_ = conn.Write(ctx, m.Type, m.Data) // queued, sent after the reconnect
		}
	}()
}
