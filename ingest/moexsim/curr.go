package moexsim

import "fastfeed/fast/codecs/moexasts"

// curr rewrites a message built with FOND's templates into CURR's (the same fields, other
// template IDs and types): OLR, TLR, MSR, OLS, TLS. Others are the same on both markets.
func curr(m *moexasts.Message) {
	switch m.ID {
	case moexasts.IDXOLRFOND:
		m.ID = moexasts.IDXOLRCURR
		m.XOLRCURR.GroupMDEntries = m.XOLRCURR.GroupMDEntries[:0]
		for _, g := range m.XOLRFOND.GroupMDEntries {
			m.XOLRCURR.GroupMDEntries = append(m.XOLRCURR.GroupMDEntries, moexasts.XOLRCURRGroupMDEntries{
				MDUpdateAction: g.MDUpdateAction, HasMDUpdateAction: g.HasMDUpdateAction, MDEntryType: g.MDEntryType,
				HasMDEntryType: g.HasMDEntryType, MDEntryID: g.MDEntryID, HasMDEntryID: g.HasMDEntryID, Symbol: g.Symbol,
				HasSymbol: g.HasSymbol, RptSeq: g.RptSeq, HasRptSeq: g.HasRptSeq, MDEntryPx: g.MDEntryPx,
				HasMDEntryPx: g.HasMDEntryPx, MDEntrySize: g.MDEntrySize, HasMDEntrySize: g.HasMDEntrySize})
		}
	case moexasts.IDXTLRFOND:
		m.ID = moexasts.IDXTLRCURR
		m.XTLRCURR.GroupMDEntries = m.XTLRCURR.GroupMDEntries[:0]
		for _, g := range m.XTLRFOND.GroupMDEntries {
			m.XTLRCURR.GroupMDEntries = append(m.XTLRCURR.GroupMDEntries, moexasts.XTLRCURRGroupMDEntries{
				MDUpdateAction: g.MDUpdateAction, HasMDUpdateAction: g.HasMDUpdateAction, MDEntryType: g.MDEntryType,
				MDEntryID: g.MDEntryID, HasMDEntryID: g.HasMDEntryID, Symbol: g.Symbol,
				HasSymbol: g.HasSymbol, RptSeq: g.RptSeq, HasRptSeq: g.HasRptSeq, MDEntryPx: g.MDEntryPx,
				HasMDEntryPx: g.HasMDEntryPx, MDEntrySize: g.MDEntrySize, HasMDEntrySize: g.HasMDEntrySize})
		}
	case moexasts.IDXMSRFOND:
		m.ID = moexasts.IDXMSRCURR
		m.XMSRCURR.GroupMDEntries = m.XMSRCURR.GroupMDEntries[:0]
		for _, g := range m.XMSRFOND.GroupMDEntries {
			m.XMSRCURR.GroupMDEntries = append(m.XMSRCURR.GroupMDEntries, moexasts.XMSRCURRGroupMDEntries{
				MDUpdateAction: g.MDUpdateAction, HasMDUpdateAction: g.HasMDUpdateAction, MDEntryType: g.MDEntryType,
				HasMDEntryType: g.HasMDEntryType, MDEntryID: g.MDEntryID, HasMDEntryID: g.HasMDEntryID, Symbol: g.Symbol,
				HasSymbol: g.HasSymbol, RptSeq: g.RptSeq, HasRptSeq: g.HasRptSeq, MDEntryPx: g.MDEntryPx,
				HasMDEntryPx: g.HasMDEntryPx, MDEntrySize: g.MDEntrySize, HasMDEntrySize: g.HasMDEntrySize})
		}
	case moexasts.IDWOLSFOND:
		w := &m.WOLSFOND
		m.ID = moexasts.IDWOLSCURR
		c := &m.WOLSCURR
		c.Symbol, c.RptSeq = w.Symbol, w.RptSeq
		c.LastMsgSeqNumProcessed, c.HasLastMsgSeqNumProcessed = w.LastMsgSeqNumProcessed, w.HasLastMsgSeqNumProcessed
		c.LastFragment, c.HasLastFragment, c.RouteFirst, c.HasRouteFirst = w.LastFragment, w.HasLastFragment, w.RouteFirst, w.HasRouteFirst
		c.GroupMDEntries = c.GroupMDEntries[:0]
		for _, g := range w.GroupMDEntries {
			c.GroupMDEntries = append(c.GroupMDEntries, moexasts.WOLSCURRGroupMDEntries{MDEntryType: g.MDEntryType,
				HasMDEntryType: g.HasMDEntryType, MDEntryID: g.MDEntryID, HasMDEntryID: g.HasMDEntryID,
				MDEntryPx: g.MDEntryPx, HasMDEntryPx: g.HasMDEntryPx, MDEntrySize: g.MDEntrySize, HasMDEntrySize: g.HasMDEntrySize})
		}
	case moexasts.IDWTLSFOND:
		w := &m.WTLSFOND
		m.ID = moexasts.IDWTLSCURR
		c := &m.WTLSCURR
		c.Symbol, c.RptSeq = w.Symbol, w.RptSeq
		c.LastMsgSeqNumProcessed, c.HasLastMsgSeqNumProcessed = w.LastMsgSeqNumProcessed, w.HasLastMsgSeqNumProcessed
		c.LastFragment, c.HasLastFragment, c.RouteFirst, c.HasRouteFirst = w.LastFragment, w.HasLastFragment, w.RouteFirst, w.HasRouteFirst
		c.GroupMDEntries = c.GroupMDEntries[:0]
		for _, g := range w.GroupMDEntries {
			c.GroupMDEntries = append(c.GroupMDEntries, moexasts.WTLSCURRGroupMDEntries{MDEntryType: g.MDEntryType,
				MDEntryID: g.MDEntryID, HasMDEntryID: g.HasMDEntryID,
				MDEntryPx: g.MDEntryPx, HasMDEntryPx: g.HasMDEntryPx, MDEntrySize: g.MDEntrySize, HasMDEntrySize: g.HasMDEntrySize})
		}
	}
}
