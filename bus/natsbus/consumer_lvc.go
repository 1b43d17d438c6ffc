package natsbus

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// lvcRetryEvery is how often a consumer whose read of the last-value cache failed (no
// JetStream yet, a stream without a leader) reads it again.
const lvcRetryEvery = time.Second

// loadLVC reads the last W of every followed instrument from the last-value cache
// and queues them for the consumer's goroutine. If the cache cannot be read, the
// consumer's tick reads it again every lvcRetryEvery until it can: without it, a
// consumer started while JetStream was away would learn quiet instruments only from
// their next change.
func (c *Consumer) loadLVC(ctx context.Context) {
	if !c.lvcLoading.CompareAndSwap(false, true) {
		c.lvcAgain.Store(true) // one is running: read again after it
		return
	}
	defer c.lvcLoading.Store(false)
	failed := false
	for _, f := range c.filters(PrefixSnap) {
		if strings.HasPrefix(f, PrefixSnap+".*.") {
			c.directGet(ctx, f)
			continue
		}
		ok, err := c.multiLast(ctx, f)
		if err == nil && !ok {
			err = c.orderedLoad(ctx, f) // more instruments than one batch answers
		}
		if err != nil && ctx.Err() == nil {
			failed = true
			c.stats.lvcErrors.Add(1)
			if !c.lvcFailed.Load() {
				c.log.Warn("NATS last-value cache unreadable; retrying", "filter", f, "err", err)
			} else {
				c.log.Debug("NATS last-value cache", "filter", f, "err", err)
			}
		}
	}
	c.lvcFailed.Store(failed || c.lvcAgain.Swap(false))
}

// directGet reads the last message of one subject (wildcards allowed) with a direct get,
// which a permission on $JS.API.DIRECT.GET.FASTFEED_SNAP.<subject> allows.
func (c *Consumer) directGet(ctx context.Context, subject string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	m, err := c.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+StreamName+"."+subject, nil)
	if err != nil {
		c.log.Debug("NATS last-value cache", "subject", subject, "err", err)
		return
	}
	if st := m.Header.Get("Status"); st != "" {
		return // 404: nothing cached yet
	}
	subj := m.Header.Get("Nats-Subject")
	if subj == "" {
		return
	}
	c.stats.lvcReads.Add(1)
	c.queue(&nats.Msg{Subject: subj, Data: m.Data})
}

// multiLastBatch is the most messages one multi_last direct get answers.
const multiLastBatch = 1024

// multiLast reads the last message of every subject matching filter with one batched
// direct get (no consumer to create: cheap for the server when many consumers start).
// It returns false if the server refuses the batch as too large (over 1024 subjects).
func (c *Consumer) multiLast(ctx context.Context, filter string) (bool, error) {
	inbox := c.nc.NewRespInbox()
	// A channel the size of one batch: SubscribeSync's default (64k messages, 512 KB) is
	// garbage a thousand starting consumers make in half a gigabyte.
	ch := make(chan *nats.Msg, multiLastBatch+8)
	sub, err := c.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return false, err
	}
	defer sub.Unsubscribe() //nolint:errcheck // best effort
	req := fmt.Appendf(nil, `{"multi_last":[%q],"batch":%d}`, filter, multiLastBatch)
	if err := c.nc.PublishRequest("$JS.API.DIRECT.GET."+StreamName, inbox, req); err != nil {
		return false, err
	}
	for {
		wait := 2 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl))
		}
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-time.After(wait):
			return false, fmt.Errorf("direct get %s: %w", filter, nats.ErrTimeout)
		}
		switch st := m.Header.Get("Status"); st {
		case "":
		case "204", "404":
			return true, nil // end of batch; nothing cached
		case "413":
			return false, nil
		default:
			return false, fmt.Errorf("direct get %s: status %s %s", filter, st, m.Header.Get("Description"))
		}
		subj := m.Header.Get("Nats-Subject")
		if subj == "" {
			continue
		}
		c.stats.lvcReads.Add(1)
		c.queue(&nats.Msg{Subject: subj, Data: m.Data})
	}
}

// orderedLoad reads the last message of every subject matching filter with an ordered
// consumer.
func (c *Consumer) orderedLoad(ctx context.Context, filter string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	js, err := jetstream.New(c.nc)
	if err != nil {
		return err
	}
	cons, err := js.OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy})
	if err != nil {
		return err
	}
	pending := cons.CachedInfo().NumPending
	for pending > 0 && ctx.Err() == nil {
		batch, err := cons.Fetch(int(min(pending, 1024)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			c.stats.lvcReads.Add(1)
			c.queue(&nats.Msg{Subject: m.Subject(), Data: m.Data()})
			if meta, err := m.Metadata(); err == nil {
				pending = meta.NumPending
			}
		}
		if err := batch.Error(); err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	return nil
}
