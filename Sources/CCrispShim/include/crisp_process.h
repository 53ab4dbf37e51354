#ifndef CRISP_PROCESS_H
#define CRISP_PROCESS_H
/* Process and pipe wrappers for CrispRuntime: GNU extensions and variadic calls that
 * Swift's Glibc module does not import. */
#include <spawn.h>
#include <stdint.h>

int crisp_pipe_cloexec(int fds[2]);
int crisp_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *dir);
short crisp_spawn_setsid_flag(void);
int crisp_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from);
int crisp_set_child_subreaper(void);
/* Installs a SIGCHLD handler that writes a byte to a non-blocking pipe and returns the pipe's
 * read end (the same one on later calls); -1 with errno on failure. The handler only calls
 * write(2), which is async-signal-safe, and keeps errno. */
int crisp_sigchld_notifier(void);
int crisp_pidfd_open(int pid);
/* F_SETPIPE_SZ (a GNU fcntl, and fcntl is variadic): grows a pipe to hold up to `bytes`; returns the
 * new size, or -1 with errno. */
int crisp_set_pipe_size(int fd, int bytes);
/* pidfd_send_signal(2) with no siginfo and no flags. */
int crisp_pidfd_send_signal(int pidfd, int sig);
/* A pseudo-terminal pair, both ends close-on-exec and neither the caller's controlling
 * terminal; returns 0, or -1 with errno set. */
int crisp_open_pty(int *master, int *slave);
/* TIOCSWINSZ/TIOCGWINSZ: ioctl is variadic, which Swift does not import. */
int crisp_set_window_size(int fd, unsigned short rows, unsigned short cols);
int crisp_get_window_size(int fd, unsigned short *rows, unsigned short *cols);
/* Whether the kernel serves x32 system calls (x86_64 only): 1 when an x32 getpid answers, 0 when
 * the kernel says ENOSYS (built without x32, or x32 turned off), -1 on other machines. Call it
 * only in a process under no seccomp filter: a filter without x32 kills the caller instead. */
int crisp_x32_syscalls_work(void);
#endif
