package main_test

import "syscall"

// sysProcAttr makes a node process die with the test binary (a timeout or
// crash of the tests leaves no server behind).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
