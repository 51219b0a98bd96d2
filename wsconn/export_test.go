package wsconn

import "time"

// SetTestHooks replaces the timer and the jitter of a client, for tests.
func SetTestHooks(o *Options, after func(time.Duration) <-chan time.Time, jitter func(int64) int64) {
	o.after, o.jitter = after, jitter
}

// SetRenewHook replaces the timer of in-band renewals, for tests.
func SetRenewHook(o *Options, after func(time.Duration) <-chan time.Time) { o.renewAfter = after }

// SetClock replaces the clock that times how long a connection stays up.
func SetClock(o *Options, now func() time.Time) { o.now = now }

// HealthyAfter is how long a connection must stay up to count as healthy.
const HealthyAfter = healthyAfter
