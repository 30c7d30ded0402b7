// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * floor-pair: two empty programs on kill(2)'s syscall entry and exit, the
 * cheapest a tracer that pairs entry with exit can be (scripts/bpf-cost).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tracepoint/syscalls/sys_enter_kill")
int floor_entry(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_kill")
int floor_exit(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
