// Package opshttp is the operator's HTTP view of a fastfeed process (--http ADDR): Prometheus
// metrics (/metrics), health (/healthz), the books and channels as JSON (/api/books,
// /api/books/{symbol}, /api/channels), a stream of conflated updates as server-sent events
// (/api/events) and a live page served from the binary (/).
//
// Everything is read off the hot path: a feed handler's state through its command queue
// (feed.Engine.Ops and LatencyCopy, run as commands of its queue between datagrams), a publisher's through its atomics. One
// sampler goroutine reads a handler a few times a second for the page and for health, so the
// number of browsers watching does not change what the handler does; a scrape of /metrics
// reads it once. Nothing here runs on the receive path, which stays free of allocations.
package opshttp
