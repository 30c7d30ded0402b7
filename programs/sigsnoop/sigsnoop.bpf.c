// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * sigsnoop: trace signals sent by kill, tkill and tgkill, and every other
 * signal the kernel generates.
 *
 * Signals sent through kill(2), tkill(2) and tgkill(2) are reported at
 * syscall exit, with the syscall's return value. Every other signal
 * (kernel-generated SIGCHLD, SIGSEGV, timers, ...) is reported from the
 * signal/signal_generate tracepoint, with that tracepoint's result (0
 * delivered, > 0 not).
 *
 * There is no program at syscall entry and no map from entry to exit: the
 * exit program reads the syscall's arguments from the user registers the
 * task saved when it entered the kernel, which the syscall does not change.
 * One program instead of two and no hash map halve the cost of a traced
 * kill (scripts/bpf-cost measures it). Reading those registers is specific
 * to x86_64.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <runner/ring.h>
#include "sigsnoop.h"

#ifndef __TARGET_ARCH_x86
#error "sigsnoop reads x86_64 syscall registers: port in_kill_syscall() and the syscall numbers"
#endif

/*
 * The kernel maps a ring's pages twice into the reader and populates them at
 * mmap, so this counts twice in the runner's RSS. 1 MiB holds 26,000 events:
 * at a quarter full the runner is woken, and 2,000,000 kill(pid, 0) at full
 * speed lose none on the 2-core test VM (scripts/bench).
 */
#define RINGBUF_SIZE	(1024 * 1024)

/* x86_64 syscall numbers, as the saved orig_ax holds them */
#define NR_kill		62
#define NR_tkill	200
#define NR_tgkill	234
#define ENOSYS		38

/* only signals sent by this process (0: any) */
const volatile pid_t filtered_pid = 0;
/* only this signal (0: any) */
const volatile int target_signal = 0;
/* only signals whose delivery failed */
const volatile bool failed_only = false;
/* trace only the kill, tkill and tgkill syscalls */
const volatile bool syscalls_only = false;

/*
 * Records wake the runner only when it sleeps or a quarter of the ring
 * waits (runner/ring.h): a wake-up per event would cost more than the
 * tracing itself, and an idle runner needs no timer.
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RINGBUF_SIZE);
} events SEC(".maps") RUNNER_WAKEUP;

/* events dropped because the ring buffer `events` was full */
__u64 lost_events __attribute__((btf_decl_tag("runner:lost=events")));

/*
 * The two fields read from the current task, relocated by CO-RE. Declared
 * here rather than taken from vmlinux.h so that the object's BTF carries
 * these two fields, not the whole task_struct of the build machine.
 */
struct task_struct___sigsnoop {
	pid_t tgid;
	char comm[TASK_COMM_LEN];
} __attribute__((preserve_access_index));

static __always_inline bool sender_filtered(__u32 tgid, int sig)
{
	if (filtered_pid && tgid != (__u32)filtered_pid)
		return true;
	if (target_signal && sig != target_signal)
		return true;
	return false;
}

/*
 * Report one signal sent by the current task. The task's pid and comm are
 * loaded straight from its task_struct: cheaper than the helpers
 * bpf_get_current_pid_tgid() and bpf_get_current_comm(), and the same bytes
 * (comm is kept NUL-padded by the kernel).
 */
static __always_inline void submit(struct task_struct___sigsnoop *task,
				   __s32 tpid, __s32 sig, __s32 ret)
{
	struct event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&lost_events, 1);
		return;
	}
	e->pid = task->tgid;
	e->tpid = tpid;
	e->sig = sig;
	e->ret = ret;
	((__u64 *)e->comm)[0] = ((__u64 *)task->comm)[0];
	((__u64 *)e->comm)[1] = ((__u64 *)task->comm)[1];
	runner_ringbuf_submit(&events, e);
}

/*
 * At the exit of kill(pid, sig) and tkill(tid, sig) the target and the
 * signal are the first two syscall arguments; for tgkill(tgid, tid, sig),
 * the thread and the signal are the last two.
 */
static __always_inline int probe_exit(long ret, bool tgkill)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_struct___sigsnoop *t = (void *)task;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	__s32 tpid, sig;

	if (tgkill) {
		tpid = PT_REGS_PARM2_SYSCALL(regs);
		sig = PT_REGS_PARM3_SYSCALL(regs);
	} else {
		tpid = PT_REGS_PARM1_SYSCALL(regs);
		sig = PT_REGS_PARM2_SYSCALL(regs);
	}
	if (sender_filtered(t->tgid, sig))
		return 0;
	if (failed_only && ret == 0)
		return 0;
	submit(t, tpid, sig, ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_kill")
int kill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return probe_exit(ctx->ret, false);
}

SEC("tracepoint/syscalls/sys_exit_tkill")
int tkill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return probe_exit(ctx->ret, false);
}

SEC("tracepoint/syscalls/sys_exit_tgkill")
int tgkill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return probe_exit(ctx->ret, true);
}

/*
 * Whether the task is inside kill, tkill or tgkill: the syscall number is
 * the saved orig_ax and, until the syscall returns, the saved ax holds
 * -ENOSYS. (An interrupt or exception from user mode saves a number of its
 * own in orig_ax, but leaves ax as user space had it.) 32-bit syscalls have
 * other numbers and no syscalls/ tracepoints: their signals are reported
 * here, from signal_generate, as they were when an entry program paired
 * entry with exit.
 */
static __always_inline bool in_kill_syscall(struct task_struct *task)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	long nr = regs->orig_ax;

	if (regs->ax != -ENOSYS)
		return false;
	return nr == NR_kill || nr == NR_tkill || nr == NR_tgkill;
}

/*
 * Every signal the kernel generates. The tag tells the runner not to load
 * (nor attach) this program when `syscalls_only` is set, so it costs
 * nothing in that mode.
 */
SEC("tracepoint/signal/signal_generate")
__attribute__((btf_decl_tag("runner:unless=syscalls_only")))
int sig_trace(struct trace_event_raw_signal_generate *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_struct___sigsnoop *t = (void *)task;
	int sig = ctx->sig;
	int result = ctx->result;

	/* Sent by a kill-family syscall: reported once, at its exit. */
	if (in_kill_syscall(task))
		return 0;
	if (sender_filtered(t->tgid, sig))
		return 0;
	if (failed_only && result == 0)
		return 0;
	submit(t, ctx->pid, sig, result);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
