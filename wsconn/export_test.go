package wsconn

import "time"

// SetTestHooks replaces the timer and the jitter of a client, for tests.
func SetTestHooks(o *Options, after func(time.Duration) <-chan time.Time, jitter func(int64) int64) {
	o.after, o.jitter = after, jitter
}

// SetRenewHook replaces the timer of in-band renewals, for tests.
func SetRenewHook(o *Options, after func(time.Duration) <-chan time.Time) { o.renewAfter = after }
