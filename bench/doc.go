// Package bench is fastfeed's benchmark suite: the latency harness, a bare-receive
// baseline, the runner behind "fastfeed bench" and its report.
//
// Latency is measured from the publisher's SendingTime (52), stamped in nanoseconds just
// before the datagram is handed to the kernel, and recorded in HdrHistogram histograms
// (nanoseconds, 1 ns to 10 s). The feed handler records per stage (see feed.Stage); the
// [Baseline] receiver does the least a receiver can: recvmmsg, read the kernel receive
// time and the SendingTime, nothing else. Its latency and its rate are this machine's
// physical limit, against which the handler is reported as ratios.
//
// [Run] runs the suite: the codec and book microbenchmarks of [Micro] (the same functions
// the package's Go benchmarks run, so "go test -bench . ./bench/" gives benchstat input),
// then the end-to-end runs, each rate through the handler and through the baseline, over
// loopback multicast: paced rates are published by package publisher (simulator, encoder,
// sendmmsg); the maximum rate is a blast of datagrams encoded in advance, handed to
// sendmmsg as fast as the kernel takes them. The sender runs in the receiver's process or,
// with [Config.Spawn], in a child process running [RunSender], as a publisher is deployed:
// the receiver then shares the CPUs with the sender but not its Go scheduler. It opens
// multicast sockets: call it inside a private network namespace (internal/netns), as
// "fastfeed bench" does. [WriteReport] writes REPORT.md and the SVG latency-percentile
// plot (x: percentile on HdrHistogram's 1/(1-p) log scale; y: latency in µs, log scale).
package bench
