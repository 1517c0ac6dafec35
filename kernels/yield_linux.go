package kernels

import "syscall"

// osYield gives the processor to another runnable thread, if the
// operating system has one waiting (sched_yield); otherwise it returns at
// once.
func osYield() { syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
