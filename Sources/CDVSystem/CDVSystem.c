#define _GNU_SOURCE
#include "CDVSystem.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

int dv_ficlone(int dst_fd, int src_fd) { return ioctl(dst_fd, FICLONE, src_fd); }

int dv_syncfs(int fd) { return syncfs(fd); }

ssize_t dv_copy_file_range(int fd_in, int fd_out, size_t len) {
  size_t total = 0;
  while (total < len) {
    ssize_t n = copy_file_range(fd_in, NULL, fd_out, NULL, len - total, 0);
    if (n < 0) return -1;
    if (n == 0) break;
    total += (size_t)n;
  }
  return (ssize_t)total;
}

int dv_open(const char *path, int flags, unsigned int mode) { return open(path, flags, (mode_t)mode); }

int dv_openat(int dirfd, const char *name, int flags) { return openat(dirfd, name, flags); }

int dv_fadvise_sequential(int fd) { return posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL); }

int64_t dv_coarse_clock_resolution_ns(void) {
  struct timespec ts;
  if (clock_getres(CLOCK_REALTIME_COARSE, &ts) != 0) return 10000000;
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t dv_coarse_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int dv_isatty(int fd) { return isatty(fd); }

#include <stdio.h>

int dv_rename_noreplace(const char *from, const char *to) {
  return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

int dv_link_tmpfile(int fd, const char *path) {
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  return linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
}

int dv_open_tmpfile(const char *dir, unsigned int mode) {
  return open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, (mode_t)mode);
}

int dv_start_writeback(int fd) { return sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE); }

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

static int spawn_program(const char *path, char *const argv[], const char *cwd, int in_fd, int out_fd) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  if (in_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, in_fd, 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  }
  if (out_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, out_fd, 2);
  }
  posix_spawn_file_actions_addchdir_np(&actions, cwd);
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t defaults, empty;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGHUP);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, path, &actions, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    errno = rc;
    return -1;
  }
  return (int)pid;
}

static int spawn_shell(const char *command, const char *cwd, int out_fd) {
  char *argv[] = {"/bin/sh", "-c", (char *)command, NULL};
  return spawn_program("/bin/sh", argv, cwd, -1, out_fd);
}

int dv_spawn_program(const char *path, const char *arg, const char *cwd, int in_fd, int out_fd) {
  char *argv[] = {(char *)path, (char *)arg, NULL};
  if (arg == NULL) argv[1] = NULL;
  return spawn_program(path, argv, cwd, in_fd, out_fd);
}

int dv_spawn_shell(const char *command, const char *cwd) { return spawn_shell(command, cwd, -1); }

int dv_spawn_shell_to(const char *command, const char *cwd, int out_fd) { return spawn_shell(command, cwd, out_fd); }

#define DV_MAX_GROUPS 256
static volatile sig_atomic_t forward_pgids[DV_MAX_GROUPS];
static volatile sig_atomic_t received = 0;

static void forward(int sig) {
  received = sig;
  for (int i = 0; i < DV_MAX_GROUPS; i++) {
    if (forward_pgids[i] > 0) kill(-forward_pgids[i], sig == SIGHUP ? SIGTERM : sig);
  }
}

static void install(void) {
  static int installed = 0;
  if (installed) return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  installed = 1;
}

void dv_forward_signals_install(void) { install(); }

void dv_forward_signals_add(int pgid) {
  install();
  for (int i = 0; i < DV_MAX_GROUPS; i++) {
    if (forward_pgids[i] == 0) {
      forward_pgids[i] = pgid;
      return;
    }
  }
}

void dv_forward_signals_remove(int pgid) {
  for (int i = 0; i < DV_MAX_GROUPS; i++) {
    if (forward_pgids[i] == pgid) forward_pgids[i] = 0;
  }
}

int dv_received_signal(void) { return received; }

int dv_wait_exit_code(int pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

int dv_wait_any_exit_code(int *pid) {
  int status = 0;
  pid_t p;
  while ((p = waitpid(-1, &status, 0)) < 0) {
    if (errno != EINTR) return -1;
  }
  *pid = (int)p;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

int dv_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

#include <sys/vfs.h>

long long dv_filesystem_magic(const char *path) {
  struct statfs info;
  if (statfs(path, &info) != 0) return -1;
  return (long long)info.f_type;
}

#include <sys/ioctl.h>

int dv_terminal_columns(int fd) {
  struct winsize size;
  if (ioctl(fd, TIOCGWINSZ, &size) != 0) return 0;
  return size.ws_col;
}
