// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * sigsnoop: trace signals sent by kill, tkill and tgkill, and every other
 * signal the kernel generates.
 *
 * Signals sent through kill(2), tkill(2) and tgkill(2) are recorded at
 * syscall entry (keyed by thread id) and reported at syscall exit, with the
 * syscall's return value. Every other signal (kernel-generated SIGCHLD,
 * SIGSEGV, timers, ...) is reported from the signal/signal_generate
 * tracepoint, with that tracepoint's result (0 delivered, > 0 not).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "sigsnoop.h"

#define MAX_ENTRIES	10240
#define RINGBUF_SIZE	(2 * 1024 * 1024)

/* only signals sent by this process (0: any) */
const volatile pid_t filtered_pid = 0;
/* only this signal (0: any) */
const volatile int target_signal = 0;
/* only signals whose delivery failed */
const volatile bool failed_only = false;
/* trace only the kill, tkill and tgkill syscalls */
const volatile bool syscalls_only = false;

/* Signals in flight through a kill-family syscall, keyed by thread id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, struct event);
} values SEC(".maps");

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

/*
 * Wake the reader only once a quarter of the ring is filled. A wake-up per
 * event costs more than the tracing itself; the runner drains the ring on a
 * timer of at most 10 ms anyway, so a quiet ring never holds events long.
 */
static __always_inline __u64 wakeup_flags(void)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);

	return avail >= size / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline int probe_entry(__s32 tpid, __s32 sig)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u32 tid = (__u32)pid_tgid;
	struct event ev = {};

	if (sender_filtered(tgid, sig))
		return 0;

	ev.pid = tgid;
	ev.tpid = tpid;
	ev.sig = sig;
	bpf_map_update_elem(&values, &tid, &ev, BPF_ANY);
	return 0;
}

static __always_inline int probe_exit(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct event *ev, *e;

	ev = bpf_map_lookup_elem(&values, &tid);
	if (!ev)
		return 0;

	if (failed_only && ret == 0)
		goto cleanup;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&lost_events, 1);
		goto cleanup;
	}
	e->pid = ev->pid;
	e->tpid = ev->tpid;
	e->sig = ev->sig;
	e->ret = (__s32)ret;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, wakeup_flags());

cleanup:
	bpf_map_delete_elem(&values, &tid);
	return 0;
}

/* kill(pid_t pid, int sig) */
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

/* tkill(pid_t tid, int sig) */
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

/* tgkill(pid_t tgid, pid_t tid, int sig): report the thread */
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

/*
 * Every signal the kernel generates. The tag tells the runner not to load
 * (nor attach) this program when `syscalls_only` is set, so it costs
 * nothing in that mode.
 */
SEC("tracepoint/signal/signal_generate")
__attribute__((btf_decl_tag("runner:unless=syscalls_only")))
int sig_trace(struct trace_event_raw_signal_generate *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u32 tid = (__u32)pid_tgid;
	int sig = ctx->sig;
	int result = ctx->result;
	struct event *e;

	/* Sent by a kill-family syscall: reported once, at its exit. */
	if (bpf_map_lookup_elem(&values, &tid))
		return 0;

	if (sender_filtered(tgid, sig))
		return 0;
	if (failed_only && result == 0)
		return 0;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&lost_events, 1);
		return 0;
	}
	e->pid = tgid;
	e->tpid = ctx->pid;
	e->sig = sig;
	e->ret = result;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, wakeup_flags());
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
