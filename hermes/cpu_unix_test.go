//go:build unix

package hermes

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) this process has used,
// for benchmarks on a shared machine: unlike wall time, it does not grow
// while other processes hold the cores.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processIO returns this process's write syscalls and bytes written so far
// (/proc/self/io syscw and wchar; zeros where unavailable). Unlike time,
// they do not depend on what else runs on the machine.
func processIO() (syscalls, bytes int64) {
	io := readIO("self")
	return io.syscw, io.wchar
}

// ioCounts are the counters of /proc/<pid>/io this package reports.
type ioCounts struct{ syscr, syscw, wchar int64 }

func readIO(pid string) ioCounts {
	var c ioCounts
	raw, err := os.ReadFile("/proc/" + pid + "/io")
	if err != nil {
		return c
	}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch k {
		case "syscr":
			c.syscr = n
		case "syscw":
			c.syscw = n
		case "wchar":
			c.wchar = n
		}
	}
	return c
}

// pidSample is what process pid has used so far: CPU time in user space
// and in the kernel (from /proc/<pid>/stat; clock ticks taken as the Linux
// USER_HZ of 100 per second), and its read and write system calls and
// bytes written (/proc/<pid>/io: files and sockets alike). Zeros where
// unavailable.
type pidSample struct {
	user, sys     time.Duration
	reads, writes int64
	written       int64
	// peakRSS is the process's peak resident set (VmHWM).
	peakRSS int64
}

func samplePID(pid int) pidSample {
	var s pidSample
	io := readIO(strconv.Itoa(pid))
	s.reads, s.writes, s.written = io.syscr, io.syscw, io.wchar
	if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status"); err == nil {
		for _, line := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				s.peakRSS = kb << 10
			}
		}
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return s
	}
	// The command name (field 2) may hold spaces; fields after it start
	// after the last ')'.
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return s
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return s
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	s.user, s.sys = time.Duration(utime)*10*time.Millisecond, time.Duration(stime)*10*time.Millisecond
	return s
}
