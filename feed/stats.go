package feed

// Stats are the handler's counters, written as one JSON object by --stats-out.
type Stats struct {
	Datagrams       uint64 `json:"datagrams"`           // datagrams read from the sockets (after injected faults)
	Messages        uint64 `json:"messages"`            // messages applied in sequence
	Decoded         uint64 `json:"decoded"`             // FAST messages decoded (each datagram at most once)
	Duplicates      uint64 `json:"duplicates"`          // copies dropped (line B, replays)
	Gaps            uint64 `json:"gaps"`                // holes detected
	Missing         uint64 `json:"missing"`             // sequence numbers found missing
	RecoveredAB     uint64 `json:"recovered_ab"`        // missing numbers filled from multicast
	LineBFirst      uint64 `json:"line_b_first"`        // datagrams taken from line B, ahead of line A's copy
	RecoveredFIX    uint64 `json:"recovered_fix"`       // missing numbers filled by FIX retransmission
	Retransmits     uint64 `json:"retransmit_requests"` // FIX retransmission requests sent
	Snapshots       uint64 `json:"snapshots"`           // channel snapshot recoveries started
	SnapshotsDone   uint64 `json:"snapshots_applied"`
	Skipped         uint64 `json:"skipped_seq"` // sequence numbers superseded by a snapshot
	StaleBooks      uint64 `json:"stale_books"` // books stale at exit
	StaleEvents     uint64 `json:"stale_events"`
	UpstreamStale   uint64 `json:"upstream_stale"`  // books the source said were stale (status 20)
	DecodeErrors    uint64 `json:"decode_errors"`   // malformed datagrams
	ForeignSource   uint64 `json:"foreign_source"`  // datagrams from a sender other than Config.Source
	AuthFailures    uint64 `json:"auth_failures"`   // datagrams whose trailer did not check (Config.Key)
	ABMismatch      uint64 `json:"ab_mismatch"`     // copies of a sequence number that differ from the copy taken
	Filtered        uint64 `json:"filtered"`        // entries of topics not subscribed, sharing a group
	KernelDrops     uint64 `json:"kernel_drops"`    // datagrams the kernel dropped (SO_RXQ_OVFL)
	Strays          uint64 `json:"stray_datagrams"` // datagrams of no group joined on a shared socket (unicast to its port)
	Heartbeats      uint64 `json:"heartbeats"`
	Resets          uint64 `json:"resets"`
	Dropped         uint64 `json:"dropped"`         // datagrams too far ahead of sequence
	RptSeqGaps      uint64 `json:"rptseq_gaps"`     // per-instrument RptSeq discontinuities
	SkippedEntries  uint64 `json:"skipped_entries"` // entries already in an instrument's snapshot
	BookErrors      uint64 `json:"book_errors"`     // entries a book refused (missing level, ...)
	RecoveryFails   uint64 `json:"recovery_failures"`
	InjectedLoss    uint64 `json:"injected_loss"`
	InjectedDup     uint64 `json:"injected_dup"`
	InjectedReord   uint64 `json:"injected_reorder"`
	InjectedDelay   uint64 `json:"injected_delay"`
	Definitions     uint64 `json:"definitions"`
	Instruments     uint64 `json:"instruments"`
	Channels        uint64 `json:"channels"`
	ClockSkew       uint64 `json:"clock_skew"`       // messages sent "in the future" by the publisher's clock
	LatencyOverflow uint64 `json:"latency_overflow"` // latencies beyond the histogram's 10 s range
	// Snapshot channels (snapchan.go): joins and leaves, W applied from them, W older
	// than the numbers already taken, datagrams ignored (not a W, or after the books
	// were whole), joins that failed, and waits that fell back to the recovery service.
	SnapshotChannelJoins     uint64 `json:"snapshot_channel_joins"`
	SnapshotChannelLeaves    uint64 `json:"snapshot_channel_leaves"`
	SnapshotChannelW         uint64 `json:"snapshot_channel_w"`
	SnapshotChannelOld       uint64 `json:"snapshot_channel_old"`
	SnapshotChannelIgnored   uint64 `json:"snapshot_channel_ignored"`
	SnapshotChannelErrors    uint64 `json:"snapshot_channel_errors"`
	SnapshotChannelFallbacks uint64 `json:"snapshot_channel_fallbacks"`
	// LastSnapshotAt is when the last snapshot recovery completed (every book of its
	// channel whole again), in the engine's clock: Unix nanoseconds for a live handler.
	// 0 if none did. A late join's time to converge is measured with it.
	LastSnapshotAt int64 `json:"last_snapshot_unix_ns"`
	// SnapshotsIgnored counts the snapshot answers that came when the channel no longer
	// needed them (a late answer to a request that timed out): not applied.
	SnapshotsIgnored uint64 `json:"snapshots_ignored"`
}
