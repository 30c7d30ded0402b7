// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * floor-exit: one empty program on kill(2)'s syscall exit, the cheapest a
 * tracer that reports at syscall exit can be (scripts/bpf-cost).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tracepoint/syscalls/sys_exit_kill")
int floor_exit(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
