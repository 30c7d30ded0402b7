/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * runner/ring.h: ring buffers that wake the runner only when it sleeps.
 *
 * `runner build` supplies this header (`runner headers DIR` writes it too).
 * Include it after vmlinux.h and <bpf/bpf_helpers.h>, tag each ring buffer
 * with RUNNER_WAKEUP, and submit to it with runner_ringbuf_submit() or
 * runner_ringbuf_output() only:
 *
 *	struct {
 *		__uint(type, BPF_MAP_TYPE_RINGBUF);
 *		__uint(max_entries, 1 << 20);
 *	} events SEC(".maps") RUNNER_WAKEUP;
 *
 *	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
 *	if (!e)
 *		return 0;
 *	...
 *	runner_ringbuf_submit(&events, e);
 *
 * A record wakes the runner when the runner said it sleeps (it had nothing
 * to read), or when a quarter of the ring waits; otherwise the runner, awake
 * and draining on a 10 ms timer, reads it within 10 ms. So an idle runner
 * never wakes up, a lone event is printed at once, and a storm of events
 * costs the traced system no wake-up per event (libbpf's default wakes the
 * reader for most records, several microseconds each).
 *
 * No wake-up is lost: the runner sets runner_reader_asleep, then looks at
 * the ring once more before it blocks; the helper reads the flag after the
 * record is published. The publish (an atomic exchange in the kernel) and
 * the runner's store are each followed by a full barrier, so either the
 * runner sees the record or the helper sees the flag and wakes it.
 *
 * A runner that does not set the flag (or a program not run by the runner)
 * sees the ring wake it at a quarter full only: it must drain on a timer.
 */
#ifndef __RUNNER_RING_H
#define __RUNNER_RING_H

/* 1 while the runner sleeps with every ring empty; set by the runner. */
unsigned int runner_reader_asleep;

/* On a ring buffer map submitted to only through the helpers below. */
#define RUNNER_WAKEUP __attribute__((btf_decl_tag("runner:wakeup=runner_reader_asleep")))

/* How to submit now: wake the reader if a quarter of the ring waits. */
static __always_inline __u64 runner_ring_flags(void *ring)
{
	__u64 waiting = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);
	__u64 size = bpf_ringbuf_query(ring, BPF_RB_RING_SIZE);

	return waiting >= size / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/*
 * After a record was published without waking the reader: wake it if it
 * sleeps, with an empty record it skips (discarded, so never shown).
 */
static __always_inline void runner_ring_published(void *ring, __u64 flags)
{
	void *bell;

	if (flags != BPF_RB_NO_WAKEUP || !*(volatile unsigned int *)&runner_reader_asleep)
		return;
	bell = bpf_ringbuf_reserve(ring, 0, 0);
	if (bell)
		bpf_ringbuf_discard(bell, BPF_RB_FORCE_WAKEUP);
}

/* bpf_ringbuf_submit(data, ...) of a record reserved on `ring`. */
static __always_inline void runner_ringbuf_submit(void *ring, void *data)
{
	__u64 flags = runner_ring_flags(ring);

	bpf_ringbuf_submit(data, flags);
	runner_ring_published(ring, flags);
}

/* bpf_ringbuf_output(ring, data, size, ...): 0, or a negative error. */
static __always_inline long runner_ringbuf_output(void *ring, void *data, __u64 size)
{
	__u64 flags = runner_ring_flags(ring);
	long err = bpf_ringbuf_output(ring, data, size, flags);

	if (!err)
		runner_ring_published(ring, flags);
	return err;
}

#endif /* __RUNNER_RING_H */
