package report

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Probe describes the machine this process runs on. dir is a directory the
// run writes to (its file system is reported as the disk); Chromium is left
// for the caller, which knows the browser it launched.
func Probe(dir string) Machine {
	m := Machine{
		OS:    runtime.GOOS,
		Arch:  runtime.GOARCH,
		Cores: runtime.NumCPU(),
		Go:    runtime.Version(),
	}
	m.CPU = cpuModel()
	m.MemoryMB = memoryMB()
	m.Disk = disk(dir)
	return m
}

// cpuModel reads the model name from /proc/cpuinfo (Linux); empty elsewhere.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// memoryMB reads MemTotal from /proc/meminfo (Linux); 0 elsewhere.
func memoryMB() int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				kb, err := strconv.Atoi(fields[0])
				if err == nil {
					return kb / 1024
				}
			}
		}
	}
	return 0
}

// disk names the file system holding dir, from the longest matching mount
// point in /proc/mounts, e.g. "ext4 /dev/sda1 at /"; empty when unknown.
func disk(dir string) string {
	if dir == "" {
		return ""
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return ""
	}
	best, bestLen := "", -1
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		dev, mnt, fs := f[0], f[1], f[2]
		if abs != mnt && !strings.HasPrefix(abs, strings.TrimSuffix(mnt, "/")+"/") {
			continue
		}
		if len(mnt) > bestLen {
			best, bestLen = fs+" "+dev+" at "+mnt, len(mnt)
		}
	}
	return best
}
