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
