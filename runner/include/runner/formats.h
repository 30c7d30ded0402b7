/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * runner/formats.h: how the runner shows a value, declared in the BPF source.
 *
 * `runner build` supplies this header (`runner headers DIR` writes it too).
 * A member of an event (or map value) struct is shown in a format when it is
 * tagged, or when its type is one of the typedefs below:
 *
 *	struct event {
 *		int ret RUNNER_FORMAT("errno");		// -2 reads ENOENT
 *		runner_signal sig;			// 9 reads SIGKILL
 *		__u32 tpid RUNNER_FORMAT("signed");	// a __u32 holding a pgid
 *		int sig2 RUNNER_NAMES("signal");	// a name only with --names
 *	};
 *
 * Formats: errno, signal, syscall, ktime[:ns|us|ms|s],
 * duration[:UNIT[:SHOWN UNIT]], dev, ipv4, ipv6, ip:<member>, hex, octal,
 * signed, flags:open (README: "Value formats"). A typedef of your own can
 * carry a format the same way: typedef __u64 lat_t RUNNER_FORMAT("duration:ns:us");
 */
#ifndef __RUNNER_FORMATS_H
#define __RUNNER_FORMATS_H

/* Show the member (or every value of the typedef) in format `f`. */
#define RUNNER_FORMAT(f) __attribute__((btf_decl_tag("runner:format=" f)))
/* Show the member in format `f` (errno, signal, syscall, flags:<set>) only
 * when the run asks for names (runner run --names); its number otherwise. */
#define RUNNER_NAMES(f) __attribute__((btf_decl_tag("runner:names=" f)))

/* A syscall's return: a negative errno by name, anything else as it is. */
typedef int runner_errno RUNNER_FORMAT("errno");
typedef long long runner_errno64 RUNNER_FORMAT("errno");
/* A signal number; bit 0x80 (the low byte of an exit code) is a core dump. */
typedef int runner_signal RUNNER_FORMAT("signal");
/* A syscall number, named as on the machine that runs the runner. */
typedef int runner_syscall RUNNER_FORMAT("syscall");
/* bpf_ktime_get_ns() (CLOCK_MONOTONIC) as wall-clock time. */
typedef unsigned long long runner_ktime RUNNER_FORMAT("ktime");
/* A time span in nanoseconds (microseconds), in the unit that reads best. */
typedef unsigned long long runner_duration_ns RUNNER_FORMAT("duration:ns");
typedef unsigned long long runner_duration_us RUNNER_FORMAT("duration:us");
/* A kernel dev_t as major:minor. */
typedef unsigned int runner_dev RUNNER_FORMAT("dev");
/* Addresses in network byte order. */
typedef unsigned int runner_ipv4 RUNNER_FORMAT("ipv4");
typedef unsigned __int128 runner_ipv6 RUNNER_FORMAT("ipv6");
/* An address or a mask, in hexadecimal. */
typedef unsigned long long runner_hex RUNNER_FORMAT("hex");
/* open(2) flags by name (O_WRONLY|O_CREAT), and a file mode in octal. */
typedef int runner_open_flags RUNNER_FORMAT("flags:open");
typedef unsigned int runner_mode RUNNER_FORMAT("octal");

#endif /* __RUNNER_FORMATS_H */
