//go:build !linux

package codecs

func threadCPU() int64 { return 0 }
func lockThread()      {}
func unlockThread()    {}
