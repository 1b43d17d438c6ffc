package moex

import "testing"

// For the package's external tests (republish_e2e_test.go), which run the commands.

// RepublishCaptureForTest is republishCapture's capture and symbols.
func RepublishCaptureForTest(t testing.TB, seed uint64) ([]byte, []string) {
	_, data, syms := republishCapture(t, seed)
	return data, syms
}

// ConformanceConfigForTest is the exchange's config file of the tests.
const ConformanceConfigForTest = conformanceConfig
