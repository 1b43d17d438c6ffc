// Package cpupin locks a goroutine to its OS thread and pins that thread to one CPU, as
// a busy-polling receive loop wants: the spinning thread keeps its core, its caches and
// its interrupts' neighbourhood, and the Go scheduler does not move the loop elsewhere.
package cpupin
