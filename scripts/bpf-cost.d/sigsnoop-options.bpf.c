// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * sigsnoop-options: sigsnoop with its costly steps chosen at build time, to
 * measure each with scripts/bpf-cost. Same events, same flags as
 * programs/sigsnoop; x86_64 only.
 *
 * PAIR says how a kill-family syscall's arguments reach its exit:
 *   0  entry stores them in a hash map keyed by thread id (sigsnoop before)
 *   1  entry stores them in task-local storage
 *   2  no entry program: exit reads them from the task's saved user registers
 *   3  like 2, but one tp_btf program on raw sys_exit (runs for every syscall)
 * Independently:
 *   COMM_TASK  copy comm from current's task_struct, not bpf_get_current_comm()
 *   PID_TASK   tgid from current's task_struct, not bpf_get_current_pid_tgid()
 *   ONE_QUERY  ask the ring only for its available data (its size is known)
 *   NO_QUERY   never wake the reader (the queries' cost; not a usable tracer)
 *   RB_OUTPUT  bpf_ringbuf_output() of a stack copy, not reserve + submit
 * programs/sigsnoop is PAIR=2 with PID_TASK, COMM_TASK and ONE_QUERY.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "../../programs/sigsnoop/sigsnoop.h"

#ifndef PAIR
#define PAIR 0
#endif

#define MAX_ENTRIES	10240
#define RINGBUF_SIZE	(2 * 1024 * 1024)
#define ENOSYS		38
/* x86_64 */
#define NR_kill		62
#define NR_tkill	200
#define NR_tgkill	234

/* only signals sent by this process (0: any) */
const volatile pid_t filtered_pid = 0;
/* only this signal (0: any) */
const volatile int target_signal = 0;
/* only signals whose delivery failed */
const volatile bool failed_only = false;
/* trace only the kill, tkill and tgkill syscalls */
const volatile bool syscalls_only = false;

/* What is read from current's task_struct (CO-RE relocated). */
struct task_struct___opt {
	pid_t tgid;
	char comm[TASK_COMM_LEN];
} __attribute__((preserve_access_index));

struct inflight {
	__s32 tpid;
	__s32 sig;
	__u32 active;
};

#if PAIR == 0
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, struct inflight);
} values SEC(".maps");
#elif PAIR == 1
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct inflight);
} values SEC(".maps");
#endif

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RINGBUF_SIZE);
} events SEC(".maps");

/* events dropped because the ring buffer `events` was full */
__u64 lost_events __attribute__((btf_decl_tag("runner:lost=events")));

static __always_inline bool sender_filtered(__u32 tgid, int sig)
{
	if (filtered_pid && tgid != (__u32)filtered_pid)
		return true;
	if (target_signal && sig != target_signal)
		return true;
	return false;
}

static __always_inline __u64 wakeup_flags(void)
{
#if defined(NO_QUERY)
	return BPF_RB_NO_WAKEUP;
#elif defined(ONE_QUERY)
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= RINGBUF_SIZE / 4 ?
		BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
#else
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);

	return avail >= size / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
#endif
}

static __always_inline __u32 current_tgid(struct task_struct *task)
{
#ifdef PID_TASK
	return ((struct task_struct___opt *)task)->tgid;
#else
	return bpf_get_current_pid_tgid() >> 32;
#endif
}

static __always_inline void current_comm(struct task_struct *task, char *comm)
{
#ifdef COMM_TASK
	/* comm is NUL-padded (set with strscpy_pad): two words copy it whole */
	struct task_struct___opt *t = (void *)task;

	((__u64 *)comm)[0] = ((__u64 *)t->comm)[0];
	((__u64 *)comm)[1] = ((__u64 *)t->comm)[1];
#else
	bpf_get_current_comm(comm, TASK_COMM_LEN);
#endif
}

/* Submit one event; the caller has filtered it. */
static __always_inline void submit(struct task_struct *task, __u32 tgid,
				   __s32 tpid, __s32 sig, __s32 ret)
{
#ifdef RB_OUTPUT
	struct event ev;

	ev.pid = tgid;
	ev.tpid = tpid;
	ev.sig = sig;
	ev.ret = ret;
	current_comm(task, ev.comm);
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), wakeup_flags()))
		__sync_fetch_and_add(&lost_events, 1);
#else
	struct event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&lost_events, 1);
		return;
	}
	e->pid = tgid;
	e->tpid = tpid;
	e->sig = sig;
	e->ret = ret;
	current_comm(task, e->comm);
	bpf_ringbuf_submit(e, wakeup_flags());
#endif
}

static __always_inline struct task_struct *task_of_current(void)
{
#if defined(PID_TASK) || defined(COMM_TASK) || PAIR >= 1
	return bpf_get_current_task_btf();
#else
	return NULL;
#endif
}

static __always_inline bool nr_is_kill(long nr)
{
	return nr == NR_kill || nr == NR_tkill || nr == NR_tgkill;
}

#if PAIR <= 1
static __always_inline int probe_entry(__s32 tpid, __s32 sig)
{
	struct task_struct *task = task_of_current();
	__u32 tgid = current_tgid(task);
	struct inflight *v;

	if (sender_filtered(tgid, sig))
		return 0;
#if PAIR == 0
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight ev = { .tpid = tpid, .sig = sig, .active = 1 };

	bpf_map_update_elem(&values, &tid, &ev, BPF_ANY);
#else
	v = bpf_task_storage_get(&values, task, NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!v)
		return 0;
	v->tpid = tpid;
	v->sig = sig;
	v->active = 1;
#endif
	return 0;
}

static __always_inline int probe_exit(long ret)
{
	struct task_struct *task = task_of_current();
	struct inflight *v;
#if PAIR == 0
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	v = bpf_map_lookup_elem(&values, &tid);
	if (!v)
		return 0;
#else
	v = bpf_task_storage_get(&values, task, NULL, 0);
	if (!v || !v->active)
		return 0;
	v->active = 0;
#endif
	if (!(failed_only && ret == 0))
		submit(task, current_tgid(task), v->tpid, v->sig, ret);
#if PAIR == 0
	bpf_map_delete_elem(&values, &tid);
#endif
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_kill")
int kill_entry(struct trace_event_raw_sys_enter *ctx)
{
	return probe_entry((__s32)ctx->args[0], (__s32)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_exit_kill")
int kill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return probe_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_tkill")
int tkill_entry(struct trace_event_raw_sys_enter *ctx)
{
	return probe_entry((__s32)ctx->args[0], (__s32)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_exit_tkill")
int tkill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return probe_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_tgkill")
int tgkill_entry(struct trace_event_raw_sys_enter *ctx)
{
	return probe_entry((__s32)ctx->args[1], (__s32)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_tgkill")
int tgkill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return probe_exit(ctx->ret);
}

static __always_inline bool in_kill_syscall(struct task_struct *task, __u32 tid)
{
#if PAIR == 0
	return bpf_map_lookup_elem(&values, &tid);
#else
	struct inflight *v = bpf_task_storage_get(&values, task, NULL, 0);

	return v && v->active;
#endif
}

#else /* PAIR >= 2 */

/* The arguments of kill (tpid in arg 1) and tkill/tgkill (arg 1 or 2). */
static __always_inline int report(struct task_struct *task, struct pt_regs *regs,
				  bool tgkill, long ret)
{
	__u32 tgid = current_tgid(task);
	__s32 tpid = tgkill ? regs->si : regs->di;
	__s32 sig = tgkill ? regs->dx : regs->si;

	if (sender_filtered(tgid, sig))
		return 0;
	if (failed_only && ret == 0)
		return 0;
	submit(task, tgid, tpid, sig, ret);
	return 0;
}

#if PAIR == 2
static __always_inline int probe_exit(long ret, bool tgkill)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);

	return report(task, regs, tgkill, ret);
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
#else
SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	long nr = regs->orig_ax;

	if (!nr_is_kill(nr))
		return 0;
	return report(bpf_get_current_task_btf(), regs, nr == NR_tgkill, ret);
}
#endif

/*
 * Inside kill, tkill or tgkill: the syscall number is in orig_ax and, until
 * the syscall returns, ax holds -ENOSYS.
 */
static __always_inline bool in_kill_syscall(struct task_struct *task, __u32 tid)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);

	return nr_is_kill(regs->orig_ax) && regs->ax == -ENOSYS;
}
#endif

SEC("tracepoint/signal/signal_generate")
__attribute__((btf_decl_tag("runner:unless=syscalls_only")))
int sig_trace(struct trace_event_raw_signal_generate *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	int sig = ctx->sig;
	int result = ctx->result;

	/* Sent by a kill-family syscall: reported once, at its exit. */
	if (in_kill_syscall(task, (__u32)pid_tgid))
		return 0;
	if (sender_filtered(tgid, sig))
		return 0;
	if (failed_only && result == 0)
		return 0;
	submit(task, tgid, ctx->pid, sig, result);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
