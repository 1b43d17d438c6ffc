package opshttp

import (
	"context"
	"reflect"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"

	"fastfeed/feed"
)

// collector turns one read of the process's state into metrics at each scrape. It is an
// unchecked collector (Describe sends nothing): the channels, and so the label values,
// are learnt as the feed goes.
type collector struct{ s *Server }

func (c *collector) Describe(chan<- *prometheus.Desc) {}

// Stage names as the stage label gives them.
var stageLabels = [feed.NumStages]string{"wire", "decode", "book", "subscribers", "total"}

// latencyBuckets are the histogram buckets, in seconds: 1 µs to 10 s in 1-2-5 steps.
var latencyBuckets = []float64{
	1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3,
	1e-2, 2e-2, 5e-2, 0.1, 0.2, 0.5, 1, 2, 5, 10,
}

// perChannel maps the --stats-out keys that are kept per channel to their ChannelOps field.
var perChannel = map[string]func(c *feed.ChannelOps) uint64{
	"duplicates":    func(c *feed.ChannelOps) uint64 { return c.Duplicates },
	"gaps":          func(c *feed.ChannelOps) uint64 { return c.Gaps },
	"missing":       func(c *feed.ChannelOps) uint64 { return c.Missing },
	"recovered_ab":  func(c *feed.ChannelOps) uint64 { return c.RecoveredAB },
	"recovered_fix": func(c *feed.ChannelOps) uint64 { return c.RecoveredFIX },
	"skipped_seq":   func(c *feed.ChannelOps) uint64 { return c.Skipped },
}

// handlerGauges are the handler's Stats that are levels, not counts.
var handlerGauges = map[string]bool{"stale_books": true, "instruments": true, "channels": true}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	cl := prometheus.Labels{"role": s.cfg.Role}
	if s.cfg.FIXSessions != nil {
		ch <- gauge("fastfeed_fix_sessions", "FIX sessions logged on (recovery, OMS clients)", cl, nil, float64(s.cfg.FIXSessions()))
	}
	ch <- gauge("fastfeed_uptime_seconds", "seconds since the process started serving", cl, nil, time.Since(s.started).Seconds())
	if s.cfg.NATS != nil {
		natsMetrics(ch, cl, s.cfg.NATS())
	}
	if s.cfg.Source != nil {
		s.collectSource(ch, cl)
		return
	}
	if s.cfg.Handler == nil {
		if s.cfg.Counters != nil {
			structMetrics(ch, s.cfg.Counters(), cl, nil, nil)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	st, err := s.cfg.Handler.Ops(ctx, feed.OpsRequest{})
	if err == nil {
		err = copyLatency(ctx, s.cfg.Handler, &st, true)
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(prometheus.NewDesc("fastfeed_up", "the handler answered", nil, cl), err)
		return
	}
	s.health(&st) // a scrape also tells health when data last came
	skip := map[string]bool{}
	for k := range perChannel {
		skip[k] = true
	}
	structMetrics(ch, st.Stats, cl, skip, handlerGauges)
	if s.cfg.Counters != nil {
		structMetrics(ch, s.cfg.Counters(), cl, skip, nil)
	}
	for k, get := range perChannel {
		for i := range st.Channels {
			c := &st.Channels[i]
			ch <- counter("fastfeed_"+k+"_total", "--stats-out "+k+", per channel", cl, []string{"channel", c.Channel}, float64(get(c)))
		}
	}
	holes := 0
	for i := range st.Channels {
		c := &st.Channels[i]
		l := []string{"channel", c.Channel}
		ch <- gauge("fastfeed_channel_stale_books", "stale books of the channel", cl, l, float64(c.Stale))
		ch <- gauge("fastfeed_channel_instruments", "followed instruments of the channel", cl, l, float64(c.Instruments))
		ch <- gauge("fastfeed_channel_next_seq", "next sequence number the channel expects", cl, l, float64(c.Next))
		open := 0.0
		if c.OpenHole {
			open, holes = 1, holes+1
		}
		ch <- gauge("fastfeed_channel_open_hole", "1 while the channel has a hole open (gap, recovering or snapshot)", cl, l, open)
		ch <- gauge("fastfeed_channel_state", "1 for the channel's sequencing state", cl, append(l, "state", c.State), 1)
	}
	ch <- gauge("fastfeed_open_holes", "channels with a hole open", cl, nil, float64(holes))
	for _, q := range st.Queues {
		l := []string{"queue", q.Name}
		ch <- gauge("fastfeed_queue_depth", "entries waiting in the handler's queue", cl, l, float64(q.Len))
		ch <- gauge("fastfeed_queue_capacity", "capacity of the handler's queue", cl, l, float64(q.Cap))
	}
	for i, snap := range st.Latency {
		if snap != nil {
			ch <- histogram("fastfeed_latency_seconds", "handler-wide latency of each stage (feed.Stage), from HdrHistogram",
				cl, []string{"stage", stageLabels[i]}, snap)
		}
	}
	for name, l := range st.ChannelLatency {
		if snap := l[feed.StageTotal]; snap != nil {
			ch <- histogram("fastfeed_channel_latency_seconds", "tick-to-handler latency of the channel (publisher SendingTime to book updated)",
				cl, []string{"channel", name}, snap)
		}
	}
}

// structMetrics emits the numeric fields of v (a struct with json tags) as metrics named
// after their keys: unsigned integers as counters fastfeed_<key>_total unless gauges names
// them, other numbers as gauges fastfeed_<key>. Keys in skip are left out.
func structMetrics(ch chan<- prometheus.Metric, v any, cl prometheus.Labels, skip, gauges map[string]bool) {
	rv := reflect.Indirect(reflect.ValueOf(v))
	if rv.Kind() != reflect.Struct {
		return
	}
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if key == "" || key == "-" || skip[key] || !f.IsExported() {
			continue
		}
		fv := rv.Field(i)
		var x float64
		isCount := false
		switch fv.Kind() {
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			x, isCount = float64(fv.Uint()), !gauges[key]
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			x = float64(fv.Int())
		case reflect.Float32, reflect.Float64:
			x = fv.Float()
		default:
			continue
		}
		if isCount {
			ch <- counter("fastfeed_"+key+"_total", "--stats-out "+key, cl, nil, x)
		} else {
			ch <- gauge("fastfeed_"+key, "--stats-out "+key, cl, nil, x)
		}
	}
}

func labelsOf(kv []string) ([]string, []string) {
	var names, values []string
	for i := 0; i+1 < len(kv); i += 2 {
		names = append(names, kv[i])
		values = append(values, kv[i+1])
	}
	return names, values
}

func counter(name, help string, cl prometheus.Labels, kv []string, v float64) prometheus.Metric {
	names, values := labelsOf(kv)
	return prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, names, cl), prometheus.CounterValue, v, values...)
}

func gauge(name, help string, cl prometheus.Labels, kv []string, v float64) prometheus.Metric {
	names, values := labelsOf(kv)
	return prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, names, cl), prometheus.GaugeValue, v, values...)
}

// histogram turns an HdrHistogram of nanoseconds into a Prometheus histogram in seconds.
func histogram(name, help string, cl prometheus.Labels, kv []string, snap *hdrhistogram.Snapshot) prometheus.Metric {
	names, values := labelsOf(kv)
	h := hdrhistogram.Import(snap)
	buckets := make(map[float64]uint64, len(latencyBuckets))
	counts := make([]uint64, len(latencyBuckets))
	var sum float64
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		sec := float64(bar.To) / 1e9
		sum += float64(bar.From+bar.To) / 2e9 * float64(bar.Count)
		for i, ub := range latencyBuckets {
			if sec <= ub {
				counts[i] += uint64(bar.Count)
				break
			}
		}
	}
	var cum uint64
	for i, ub := range latencyBuckets {
		cum += counts[i]
		buckets[ub] = cum
	}
	return prometheus.MustNewConstHistogram(prometheus.NewDesc(name, help, names, cl), uint64(h.TotalCount()), sum, buckets, values...)
}

// copyLatency fills st's latency histograms, one copy per stop of the handler's loop
// (feed.Engine.LatencyCopy) rather than all in one: the longest stop is one histogram's
// copy, not the sum. With channels, each channel's tick-to-handler histogram too.
func copyLatency(ctx context.Context, h Handler, st *feed.OpsState, channels bool) error {
	for i := range st.Latency {
		snap, err := h.LatencyCopy(ctx, "", feed.Stage(i))
		if err != nil {
			return err
		}
		st.Latency[i] = snap
	}
	if !channels {
		return nil
	}
	st.ChannelLatency = make(map[string][feed.NumStages]*hdrhistogram.Snapshot, len(st.Channels))
	for _, c := range st.Channels {
		snap, err := h.LatencyCopy(ctx, c.Channel, feed.StageTotal)
		if err != nil {
			return err
		}
		var l [feed.NumStages]*hdrhistogram.Snapshot
		l[feed.StageTotal] = snap
		st.ChannelLatency[c.Channel] = l
	}
	return nil
}

// natsMetrics emits the NATS session gauges: how many connections are connected, and
// each one's state.
func natsMetrics(ch chan<- prometheus.Metric, cl prometheus.Labels, sessions []NATSSession) {
	up := 0
	for _, n := range sessions {
		if n.State == "connected" {
			up++
		}
		ch <- gauge("fastfeed_nats_session_state", "1 for each NATS connection's state (connected, reconnecting, disconnected, closed)",
			cl, []string{"session", n.Name, "state", n.State}, 1)
	}
	ch <- gauge("fastfeed_nats_sessions", "NATS connections connected", cl, nil, float64(up))
}
