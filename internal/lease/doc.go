// Package lease keeps the leases a node holds on the occurrences it runs, and stops the
// node's own work the moment it can no longer prove it holds them.
//
// A claim (internal/queue) takes a per-occurrence lock in Redis, SET NX PX with the fencing
// token as value. While the handler runs, the Keeper renews every held lease in one batched
// round trip (compare-and-pexpire: only a lock whose value is our token is extended).
//
// Self-fencing: each held lease has a deadline on this node's monotonic clock, measured from
// the moment the last successful claim or renewal was SENT (Redis set the TTL after that, so
// the real expiry is never earlier). When the deadline passes without a successful renewal,
// because Redis is unreachable, the node was paused, or the lock was found taken, the run's
// context is cancelled with ErrLost before the lease can expire in Redis: the margin
// (Lease/5 by default) is time for the handler's plugin to kill its work. A late completion
// is refused anyway by the compare-and-delete in internal/queue, and the fencing token lets
// handlers fence their own side effects.
//
// Why a timer per lease and a separate renewal loop: a renewal call that hangs on a dead
// Redis must not delay self-fencing, so the fence never waits for the network.
//
// The Keeper does not know Redis: renewals go through the one-method Renewer interface,
// implemented by internal/queue, which owns the keys and scripts. Tests run the Keeper in a
// testing/synctest bubble, so its timers run on fake time.
package lease
