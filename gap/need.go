package gap

// NeedSnapshot reports that the channel's books cannot be trusted although no number is
// missing (the caller found two different copies of one sequence number): the tracker
// goes to Snapshot state, buffering what comes until SnapshotApplied, and the next Poll
// asks for snapshots. Before the first datagram it does nothing.
func (t *Sequencer[T]) NeedSnapshot(now int64) {
	if !t.started || t.state == Snapshot {
		return
	}
	t.enterSnapshot(now)
}
