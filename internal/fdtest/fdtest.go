// Package fdtest runs a test under a low limit of open files (RLIMIT_NOFILE) in a child
// process, so that exhausting file descriptors on purpose harms no other test, and
// counts a process's open files.
//
//	func TestExhaustion(t *testing.T) {
//		if !fdtest.Child(t, 1024) {
//			return // the parent: the child ran the test and passed
//		}
//		// here, in the child, with at most 1024 open files
//	}
package fdtest

// env names the test a child process runs under the limit.
const env = "FASTFEED_FDTEST"
