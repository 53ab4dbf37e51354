#define _GNU_SOURCE
#include "crisp_shim.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/btrfs.h>
#include <linux/openat2.h>

int crisp_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = flags;
    how.mode = mode;
    how.resolve = resolve;
    int r;
    /* EAGAIN happens when a rename races with RESOLVE_IN_ROOT resolution; retrying is what the
     * kernel documentation asks callers to do. */
    do { r = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how); } while (r < 0 && errno == EAGAIN);
    return r;
}

int crisp_mknodat(int dirfd, const char *path, mode_t mode, unsigned int major, unsigned int minor) {
    return mknodat(dirfd, path, mode, makedev(major, minor));
}
unsigned int crisp_major(uint64_t dev) { return major(dev); }
unsigned int crisp_minor(uint64_t dev) { return minor(dev); }
int crisp_errno(void) { return errno; }

int crisp_fsetxattr(int fd, const char *name, const void *value, size_t size) {
    return fsetxattr(fd, name, value, size, 0);
}
int crisp_lsetxattr(const char *path, const char *name, const void *value, size_t size) {
    return lsetxattr(path, name, value, size, 0);
}
int crisp_setxattr(const char *path, const char *name, const void *value, size_t size) {
    return setxattr(path, name, value, size, 0);
}
ssize_t crisp_flistxattr(int fd, char *list, size_t size) { return flistxattr(fd, list, size); }
ssize_t crisp_lgetxattr(const char *path, const char *name, void *value, size_t size) {
    return lgetxattr(path, name, value, size);
}


int crisp_o_path(void) { return O_PATH; }
ssize_t crisp_fgetxattr(int fd, const char *name, void *value, size_t size) {
    return fgetxattr(fd, name, value, size);
}

int crisp_mount(const char *source, const char *target, const char *fstype,
                unsigned long flags, const char *data) {
    return mount(source, target, fstype, flags, data);
}
int crisp_umount2(const char *target, int flags) { return umount2(target, flags); }
unsigned long crisp_ms_private(void) { return MS_PRIVATE; }
unsigned long crisp_ms_rec(void) { return MS_REC; }
unsigned long crisp_ms_bind(void) { return MS_BIND; }
unsigned long crisp_ms_rdonly(void) { return MS_RDONLY; }
int crisp_mnt_detach(void) { return MNT_DETACH; }

int crisp_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags) {
    return renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
}
unsigned int crisp_rename_noreplace(void) { return RENAME_NOREPLACE; }
unsigned int crisp_rename_exchange(void) { return RENAME_EXCHANGE; }

ssize_t crisp_copy_file_range(int in, int out, size_t len) {
    return copy_file_range(in, NULL, out, NULL, len, 0);
}
int crisp_flock(int fd, int operation) { return flock(fd, operation); }

static int copy_name(char *dst, size_t cap, const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n >= cap || strchr(name, '/') != NULL) { errno = EINVAL; return -1; }
    memcpy(dst, name, n + 1);
    return 0;
}

int crisp_btrfs_subvol_create(int dirfd, const char *name) {
    struct btrfs_ioctl_vol_args args;
    memset(&args, 0, sizeof args);
    if (copy_name(args.name, sizeof args.name, name) < 0) return -1;
    return ioctl(dirfd, BTRFS_IOC_SUBVOL_CREATE, &args);
}

int crisp_btrfs_snapshot(int srcfd, int dirfd, const char *name) {
    struct btrfs_ioctl_vol_args_v2 args;
    memset(&args, 0, sizeof args);
    args.fd = srcfd;
    if (copy_name(args.name, sizeof args.name, name) < 0) return -1;
    return ioctl(dirfd, BTRFS_IOC_SNAP_CREATE_V2, &args);
}

int crisp_btrfs_subvol_delete(int dirfd, const char *name) {
    struct btrfs_ioctl_vol_args args;
    memset(&args, 0, sizeof args);
    if (copy_name(args.name, sizeof args.name, name) < 0) return -1;
    return ioctl(dirfd, BTRFS_IOC_SNAP_DESTROY, &args);
}

long crisp_fstatfs_type(int fd) {
    struct statfs s;
    if (fstatfs(fd, &s) < 0) return 0;
    return (long)s.f_type;
}

int crisp_memfd(const char *name) {
    /* memfd_create is behind _GNU_SOURCE in glibc's headers, which Swift's Glibc module does not see. */
    return memfd_create(name, MFD_CLOEXEC);
}

#include <malloc.h>

// <malloc.h> is not part of Swift's Glibc module.
int crisp_malloc_arena_max(int count) { return mallopt(M_ARENA_MAX, count); }
