package qr

import (
	"syscall"
	"time"
)

// CPUTime is the CPU time this process has used. The benchmarks report
// operations per CPU second besides per wall second: on a machine shared
// with other work the first is what one core of its own would do.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var cpuTime = CPUTime
