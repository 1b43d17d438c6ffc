//go:build !linux

package moex

func threadCPU() int64 { return 0 }
func lockThread()      {}
func unlockThread()    {}
