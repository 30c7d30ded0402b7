/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
#ifndef __SIGSNOOP_H
#define __SIGSNOOP_H

#include <runner/formats.h>

#define TASK_COMM_LEN 16

/*
 * One signal, as written to the ring buffer. Fixed-width signed fields so
 * that a process-group target (kill(-1234, sig)) decodes as -1234.
 * Layout: pid@0 tpid@4 sig@8 ret@12 comm@16[16], 32 bytes.
 *
 * The signal and a failed syscall's errno are numbers by default and names
 * when asked (`runner run --names`, as bcc's `sigsnoop -n`): SIGKILL, ESRCH.
 */
struct event {
	__s32 pid;	/* sender process (tgid) */
	__s32 tpid;	/* target as given: pid, tid, or negative process group */
	__s32 sig RUNNER_NAMES("signal");
	/* syscall return (0 or -errno); for generated signals, signal_generate's result */
	__s32 ret RUNNER_NAMES("errno");
	char comm[TASK_COMM_LEN];	/* sender's comm */
};

#endif /* __SIGSNOOP_H */
