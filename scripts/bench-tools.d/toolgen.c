/* toolgen: the load generator of scripts/bench-tools. Built static by that script (no
 * dynamic loader, so its only opens and execs are the ones it is asked for).
 *
 *   toolgen exec N PATH [ARG...]  N times: fork, execv(PATH, [PATH, ARG...]), wait
 *   toolgen open N PATH           N times: open(PATH, O_RDONLY), close
 *   toolgen pingpong N            N round trips of one byte between two processes over pipes
 *   toolgen true                  exit 0 at once (the program `exec` runs, under another name)
 *
 * Prints one line of JSON: {"mode","count","elapsed_ns","ns_per_op","pid"}.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void exec_storm(long n, char **argv)
{
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			execv(argv[0], argv);
			_exit(127);
		}
		int status;
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			die("exec child");
	}
}

static void open_storm(long n, const char *path)
{
	for (long i = 0; i < n; i++) {
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			die("open");
		close(fd);
	}
}

static void ping_pong(long n)
{
	int there[2], back[2];
	char byte = 'x';
	if (pipe(there) || pipe(back))
		die("pipe");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(there[1]);
		close(back[0]);
		while (read(there[0], &byte, 1) == 1)
			if (write(back[1], &byte, 1) != 1)
				_exit(1);
		_exit(0);
	}
	close(there[0]);
	close(back[1]);
	for (long i = 0; i < n; i++)
		if (write(there[1], &byte, 1) != 1 || read(back[0], &byte, 1) != 1)
			die("ping-pong");
	close(there[1]);
	waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "true"))
		return 0;
	if (argc < 3 || (!strcmp(argv[1], "open") && argc != 4) || (!strcmp(argv[1], "exec") && argc < 4)) {
		fprintf(stderr, "usage: toolgen exec N PATH [ARG...] | open N PATH | pingpong N | true\n");
		return 2;
	}
	long n = strtol(argv[2], NULL, 10);
	if (n <= 0) {
		fprintf(stderr, "toolgen: N must be a positive number, got %s\n", argv[2]);
		return 2;
	}
	long long start = now_ns();
	if (!strcmp(argv[1], "exec"))
		exec_storm(n, argv + 3);
	else if (!strcmp(argv[1], "open"))
		open_storm(n, argv[3]);
	else if (!strcmp(argv[1], "pingpong"))
		ping_pong(n);
	else {
		fprintf(stderr, "toolgen: unknown mode %s\n", argv[1]);
		return 2;
	}
	long long elapsed = now_ns() - start;
	printf("{\"mode\":\"%s\",\"count\":%ld,\"elapsed_ns\":%lld,\"ns_per_op\":%.1f,\"pid\":%d}\n", argv[1], n,
	       elapsed, (double)elapsed / n, getpid());
	return 0;
}
