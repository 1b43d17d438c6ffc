// Package netns runs tests and benchmark commands inside a private network
// namespace, so that nothing they send can reach a real network.
//
// A private namespace is a new user namespace plus a new network namespace
// (CLONE_NEWUSER|CLONE_NEWNET), entered by re-executing the running program
// with the same arguments. The current uid and gid are mapped to 0 inside, so
// this works for root and for an ordinary user alike. The new network
// namespace holds only a loopback interface; it is brought up, with
// IFF_MULTICAST, before any test or command code runs, so multicast on lo
// works (lo covers all of 127.0.0.0/8: a sender may use 127.0.0.2 as its
// source without adding an address).
//
// If the kernel refuses the namespaces (user namespaces disabled, a seccomp
// profile, an AppArmor restriction), the program fails with an error that
// says so. It never falls back to the host namespace.
//
// For a package's tests:
//
//	func TestMain(m *testing.M) { netns.RunTests(m) }
//
// For a command, as the first thing it does:
//
//	handled, code, err := netns.Reexec(ctx, os.Args[1:])
//	if err != nil {
//		log.Fatal(err)
//	}
//	if handled {
//		os.Exit(code) // the job ran in the child
//	}
//	// here the process is inside, with lo up
//
// Child processes started by a test that runs inside (for example the
// fastfeed binary the test has built) are in the same namespace
// automatically: a namespace is inherited across fork and exec. [Command]
// builds such an exec.Cmd and refuses to when the caller is not inside, so a
// test cannot start a networked child in the host namespace by mistake.
//
// The marker of a private namespace is the environment variable [EnvMarker],
// set by the re-executing parent to the identity of its own network namespace.
// [Inside] reports true only when that variable is set, the current network
// namespace differs from the one it names and the process is not in the
// initial user namespace; children inherit the variable and so agree.
package netns
