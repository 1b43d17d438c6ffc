package publisher

import (
	"fmt"
	"math"

	"fastfeed/book"
)

// MaxInstruments is the most instruments GenerateInstruments makes.
const MaxInstruments = 100000

// known are real-looking instruments, MOEX and US names first, with their
// exchanges' tick sizes, in the order GenerateInstruments hands them out.
var known = []struct {
	symbol, tick string
	exp          int8
	price        string
	typ, ccy     string
	desc         string
}{
	{"SBER", "0.01", -2, "285.4", "CS", "RUB", "Сбербанк ао"},
	{"GAZP", "0.01", -2, "160.25", "CS", "RUB", "Газпром ао"},
	{"LKOH", "0.5", -1, "7050", "CS", "RUB", "ЛУКОЙЛ ао"},
	{"AAPL", "0.01", -2, "189.84", "CS", "USD", "Apple Inc."},
	{"MSFT", "0.01", -2, "421.9", "CS", "USD", "Microsoft Corp."},
	{"USD000UTSTOM", "0.0025", -4, "91.235", "FOR", "RUB", "USD/RUB TOM"},
	{"GMKN", "0.02", -2, "158.4", "CS", "RUB", "ГМК Норникель ао"},
	{"NVDA", "0.01", -2, "880.08", "CS", "USD", "NVIDIA Corp."},
	{"ROSN", "0.05", -2, "560.35", "CS", "RUB", "Роснефть ао"},
	{"ESZ5", "0.25", -2, "5250.25", "FUT", "USD", "E-mini S&P 500 Dec 2025"},
	{"VTBR", "0.000005", -6, "0.024315", "CS", "RUB", "ВТБ ао"},
	{"AMZN", "0.01", -2, "178.25", "CS", "USD", "Amazon.com Inc."},
	{"NVTK", "0.2", -1, "1100.4", "CS", "RUB", "НОВАТЭК ао"},
	{"EURUSD", "0.00005", -5, "1.08445", "FOR", "USD", "EUR/USD spot"},
	{"MGNT", "0.5", -1, "5480.5", "CS", "RUB", "Магнит ао"},
	{"GOOGL", "0.01", -2, "152.1", "CS", "USD", "Alphabet Inc. Class A"},
	{"TATN", "0.1", -1, "680.3", "CS", "RUB", "Татнефть ао"},
	{"SiZ5", "1", 0, "91500", "FUT", "RUB", "USD/RUB futures Dec 2025"},
	{"META", "0.01", -2, "493.5", "CS", "USD", "Meta Platforms Inc."},
	{"MTSS", "0.05", -2, "260.15", "CS", "RUB", "МТС ао"},
	{"TSLA", "0.01", -2, "175.79", "CS", "USD", "Tesla Inc."},
	{"ALRS", "0.01", -2, "72.45", "CS", "RUB", "АЛРОСА ао"},
	{"JPM", "0.01", -2, "197.45", "CS", "USD", "JPMorgan Chase & Co."},
	{"RIZ5", "10", 0, "110000", "FUT", "RUB", "RTS index futures Dec 2025"},
	{"AFLT", "0.02", -2, "55.12", "CS", "RUB", "Аэрофлот ао"},
	{"XOM", "0.01", -2, "118.2", "CS", "USD", "Exxon Mobil Corp."},
	{"SNGS", "0.005", -3, "27.855", "CS", "RUB", "Сургутнефтегаз ао"},
	{"BRK.B", "0.01", -2, "408.35", "CS", "USD", "Berkshire Hathaway Class B"},
	{"PLZL", "0.5", -1, "12850.5", "CS", "RUB", "Полюс ао"},
	{"CLZ5", "0.01", -2, "78.45", "FUT", "USD", "Crude oil Dec 2025"},
	{"CHMF", "0.2", -1, "1250.4", "CS", "RUB", "Северсталь ао"},
	{"GCZ5", "0.1", -1, "2345.6", "FUT", "USD", "Gold Dec 2025"},
}

// tickClasses are the tick sizes of generated instruments, beyond the known
// list: cents, half points at one decimal, and quarter pips at four.
var tickClasses = []struct {
	tick     int64
	exp      int8
	lo, span int64 // start price range in ticks
}{
	{1, -2, 1000, 49000},   // 0.01 at -2: 10.00 .. 500.00
	{5, -1, 2000, 16000},   // 0.5 at -1: 1000 .. 9000
	{25, -4, 400, 39600},   // 0.0025 at -4: 1 .. 100
	{5, -3, 2000, 20000},   // 0.005 at -3: 10 .. 110
	{1, 0, 50000, 100000},  // 1 at 0: 50000 .. 150000
	{2, -2, 1000, 100000},  // 0.02 at -2: 20 .. 2020
	{10, 0, 10000, 10000},  // 10 at 0: 100000 .. 200000
	{1, -2, 100, 900},      // 0.01 at -2: 1.00 .. 10.00
	{5, -5, 20000, 20000},  // 0.00005 at -5: 1 .. 3
	{25, -2, 10000, 20000}, // 0.25 at -2: 2500 .. 7500
}

// GenerateInstruments returns n instruments: the known MOEX, US and futures
// names first (SBER, GAZP, LKOH, AAPL, MSFT, ...), then deterministic
// four-letter symbols with tick sizes and exponents of several classes
// (0.01 at -2, 0.5 at -1, 0.0025 at -4, ...). The same n always gives the
// same instruments, whatever the simulator's seed. Weights fall with the
// rank (1/sqrt(rank)), so the first names are the busiest.
func GenerateInstruments(n int) ([]Instrument, error) {
	if n < 1 || n > MaxInstruments {
		return nil, fmt.Errorf("publisher: generate %d instruments: want 1..%d", n, MaxInstruments)
	}
	out := make([]Instrument, 0, n)
	taken := make(map[string]bool, n)
	for _, k := range known {
		if len(out) == n {
			break
		}
		exp := int(k.exp)
		tick, err1 := book.ParseDecimal(k.tick, exp)
		price, err2 := book.ParseDecimal(k.price, exp)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("publisher: known instrument %s: %v %v", k.symbol, err1, err2)
		}
		out = append(out, Instrument{Symbol: k.symbol, PriceExp: k.exp, Tick: tick, StartPrice: price,
			SecurityType: k.typ, Currency: k.ccy, Description: k.desc})
		taken[k.symbol] = true
	}
	// Four-letter symbols from a permutation of 0..26^4-1 (7919 is prime to
	// 26^4), so that neighbours do not look alike.
	const space = 26 * 26 * 26 * 26
	for k := uint64(0); len(out) < n; k++ {
		v := (k*7919 + 104729) % space
		var sym [4]byte
		for j := 3; j >= 0; j-- {
			sym[j] = 'A' + byte(v%26)
			v /= 26
		}
		s := string(sym[:])
		if taken[s] {
			continue
		}
		taken[s] = true
		h := mix(k)
		c := tickClasses[h%uint64(len(tickClasses))]
		ticks := c.lo + int64((h>>16)%uint64(c.span))
		out = append(out, Instrument{Symbol: s, PriceExp: c.exp, Tick: c.tick, StartPrice: ticks * c.tick,
			SecurityType: "CS", Currency: "USD", Description: "Simulated " + s})
	}
	for i := range out {
		out[i].Weight = 1 / math.Sqrt(float64(i+1))
	}
	return out, nil
}

// mix is splitmix64's finalizer: a fixed scramble of k.
func mix(k uint64) uint64 {
	k += 0x9e3779b97f4a7c15
	k = (k ^ k>>30) * 0xbf58476d1ce4e5b9
	k = (k ^ k>>27) * 0x94d049bb133111eb
	return k ^ k>>31
}
