//go:build !linux

package main_test

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: node processes are
// killed by the tests' cleanups.
func sysProcAttr() *syscall.SysProcAttr { return nil }
