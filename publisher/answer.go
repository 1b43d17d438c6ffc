package publisher

// Preparing a recovery answer: the retransmitted range or the aligned snapshots, fetched from the publishing loop.

import (
	"context"
	"errors"
	"fmt"

	"github.com/quickfixgo/quickfix"
	"github.com/quickfixgo/tag"

	"fastfeed/md"
)

// prepare fetches the answer to req from the publishing loop; nil if req was
// refused (a reject sent) or the session ended.
func (s *RecoveryService) prepare(sess *recoverySession, codec *md.Codec, req *md.MarketDataRequest) *answer {
	if req.BegSeqNum != 0 || req.EndSeqNum != 0 {
		return s.prepareRetransmit(sess, codec, req)
	}
	return s.prepareSnapshot(sess, codec, req)
}

// rejectReason maps an error of the hooks to an MDReqRejReason.
func rejectReason(err error) byte {
	switch {
	case errors.Is(err, ErrUnknownChannel), errors.Is(err, ErrUnknownSymbol):
		return md.RejectUnknownSymbol
	case errors.Is(err, ErrBeyondRetention), errors.Is(err, ErrInvalidRange):
		return md.RejectUnsupportedScope
	default: // ErrRangeTooLarge, ErrNotRunning, a timeout
		return md.RejectInsufficientBandwidth
	}
}

func (s *RecoveryService) prepareRetransmit(sess *recoverySession, codec *md.Codec, req *md.MarketDataRequest) *answer {
	ctx, cancel := context.WithTimeout(sess.ctx, s.opts.Timeout)
	dgs, err := s.p.Retransmit(ctx, req.ApplID, req.BegSeqNum, req.EndSeqNum)
	cancel()
	if err != nil {
		if sess.ctx.Err() == nil {
			s.reject(sess, req.MDReqID, rejectReason(err), err.Error())
		}
		return nil
	}
	channel, reqID, beg := req.ApplID, req.MDReqID, req.BegSeqNum
	return &answer{reqID: reqID, n: len(dgs), sent: &s.retransmitted, msg: func(i int) (*quickfix.Message, error) {
		d := dgs[i]
		dgs[i] = nil // let what is sent go
		return retransmission(codec, d, beg+uint32(i), channel, reqID)
	}}
}

// retransmission converts a retained datagram to its FIX form for the
// request reqID of channel.
func retransmission(codec *md.Codec, d []byte, want uint32, channel, reqID string) (*quickfix.Message, error) {
	seq, kind, err := DecodeDatagram(codec, d)
	if err != nil {
		return nil, err
	}
	if seq != want {
		return nil, fmt.Errorf("retained datagram %d of %s where %d was expected", seq, channel, want)
	}
	appl := md.ApplFields{ApplID: channel, ApplSeqNum: seq, ApplResendFlag: true, MDReqID: reqID}
	switch kind {
	case md.KindIncremental:
		return md.IncrementalToFIX(&codec.Incremental, appl), nil
	case md.KindDefinition:
		return md.DefinitionToFIX(&codec.Definition, appl), nil
	case md.KindStatus:
		return md.StatusToFIX(&codec.Status, appl), nil
	}
	return nil, fmt.Errorf("retained datagram %d of %s is a %v, not a sequenced message", seq, channel, kind)
}

func (s *RecoveryService) prepareSnapshot(sess *recoverySession, codec *md.Codec, req *md.MarketDataRequest) *answer {
	ctx, cancel := context.WithTimeout(sess.ctx, s.opts.Timeout)
	defer cancel()
	snaps, err := s.p.Snapshot(ctx, req.ApplID, dedup(req.Symbols))
	if err == nil {
		err = s.align(ctx, codec, snaps)
	}
	if err == nil {
		reqID := req.MDReqID
		return &answer{reqID: reqID, n: len(snaps), sent: &s.snapshots, msg: func(i int) (*quickfix.Message, error) {
			channel, _ := s.p.ChannelOf(string(snaps[i].Symbol))
			msg := md.SnapshotToFIX(&snaps[i], md.ApplFields{ApplID: channel, MDReqID: reqID})
			msg.Body.SetInt(tag.TotNumReports, len(snaps))
			return msg, nil
		}}
	}
	if sess.ctx.Err() == nil {
		s.reject(sess, req.MDReqID, rejectReason(err), err.Error())
	}
	return nil
}

func dedup(symbols []string) []string {
	seen := make(map[string]bool, len(symbols))
	out := symbols[:0:0]
	for _, sym := range symbols {
		if !seen[sym] {
			seen[sym] = true
			out = append(out, sym)
		}
	}
	return out
}
