#ifndef DV_CDVSYSTEM_H
#define DV_CDVSYSTEM_H

#include <stdint.h>
#include <sys/types.h>

/// Clones `src_fd` into `dst_fd` with FICLONE (a reflink). Returns 0, or -1 with errno set
/// (EOPNOTSUPP / EXDEV / EINVAL when the filesystem cannot share extents).
int dv_ficlone(int dst_fd, int src_fd);

/// syncfs(2): makes every written file of the filesystem that holds `fd` durable.
int dv_syncfs(int fd);

/// copy_file_range(2) over whole files; returns bytes copied or -1 with errno.
ssize_t dv_copy_file_range(int fd_in, int fd_out, size_t len);

/// open(2) with a mode (open is variadic in C and cannot be called with a mode from Swift).
int dv_open(const char *path, int flags, unsigned int mode);

/// openat(2) for reading a directory entry by its raw name (no mode: nothing is created).
int dv_openat(int dirfd, const char *name, int flags);

/// posix_fadvise(POSIX_FADV_SEQUENTIAL) on a descriptor: larger readahead for streaming.
int dv_fadvise_sequential(int fd);

/// The resolution of CLOCK_REALTIME_COARSE in nanoseconds: the granularity of file timestamps.
int64_t dv_coarse_clock_resolution_ns(void);

/// CLOCK_REALTIME_COARSE now, in nanoseconds since the epoch.
int64_t dv_coarse_now_ns(void);

/// 1 when file descriptor 2 / `fd` is a terminal.
int dv_isatty(int fd);




/// renameat2(..., RENAME_NOREPLACE): moves `from` to `to` only when `to` does not exist
/// (EEXIST otherwise), so a cache object is never overwritten.
int dv_rename_noreplace(const char *from, const char *to);

/// Links an O_TMPFILE descriptor into the filesystem at `path` (EEXIST when it exists).
int dv_link_tmpfile(int fd, const char *path);

/// Opens an unnamed temporary file in directory `dir` (O_TMPFILE); -1 with errno when unsupported.
int dv_open_tmpfile(const char *dir, unsigned int mode);
/// sync_file_range(SYNC_FILE_RANGE_WRITE): starts writing a file's dirty pages to disk without
/// waiting, so a later syncfs has less left to wait for.
int dv_start_writeback(int fd);

/// Starts `/bin/sh -c command` in directory `cwd` as the leader of a new process group, with
/// stdin from /dev/null and stdout/stderr inherited. Returns the pid, or -1 with errno.
int dv_spawn_shell(const char *command, const char *cwd);

/// Like dv_spawn_shell, with the command's stdout and stderr both written to `out_fd`.
int dv_spawn_shell_to(const char *command, const char *cwd, int out_fd);

/// Starts the program at `path` with one argument (or none when `arg` is NULL) in `cwd`, in a
/// process group of its own, stdin from `in_fd` (or /dev/null when negative), stdout and stderr
/// to `out_fd` (or dv's own when negative). Returns the pid, or -1 with errno set.
int dv_spawn_program(const char *path, const char *arg, const char *cwd, int in_fd, int out_fd);

/// pipe2(fds, O_CLOEXEC): a pipe whose ends are not inherited by other commands.
int dv_pipe_cloexec(int fds[2]);

/// While stages run: SIGINT, SIGTERM and SIGHUP received by dv are forwarded to every process
/// group added here and remembered; dv keeps running to record what finished.
void dv_forward_signals_add(int pgid);

/// Stops forwarding to a process group that ended.
void dv_forward_signals_remove(int pgid);

/// waitpid for any child, retried on EINTR; stores the pid and returns its exit code as
/// dv_wait_exit_code does (-1 with errno when there is none).
int dv_wait_any_exit_code(int *pid);

/// The signal dv received since the forwarding was installed (0: none).
int dv_received_signal(void);

/// Installs dv's SIGINT/SIGTERM/SIGHUP handler (idempotent): from then on a signal is recorded
/// (see dv_received_signal) and forwarded to registered process groups instead of killing dv,
/// so that work in dv's own process can stop cleanly.
void dv_forward_signals_install(void);

/// waitpid for `pid`, retried on EINTR; returns the exit code, 128 + signal number when the
/// child was killed, or -1 with errno.
int dv_wait_exit_code(int pid);

/// The width in columns of the terminal `fd` is, or 0 when it is none.
int dv_terminal_columns(int fd);

/// statfs(2)'s f_type (the filesystem's magic number) for `path`, or -1 with errno.
long long dv_filesystem_magic(const char *path);

#endif
