// Package natsbus distributes a handler's book changes on NATS, as DESIGN.md's "Wire:
// NATS" describes: subjects md.<channel>.<symbol>, snap.<channel>.<symbol> and
// status.<channel>.<symbol>, each payload one FIX application message in tag-value form.
//
// A Publisher takes a feed.Engine's events from a bounded ring filled on the engine's
// goroutine without allocating or blocking, conflates when NATS is slow or away, and keeps
// the last-value cache (the JetStream stream FASTFEED_SNAP) that a late consumer reads. A
// Consumer subscribes by subject, checks each instrument's RptSeq, rebuilds books from what
// it receives and resynchronises from the cache after a hole; consumers of one process can
// share a connection in a Group. The gateway (fastfeed gateway) is bus's OMS FIX service fed
// by a Consumer. Server starts nats-server in the process (--nats embedded).
package natsbus
