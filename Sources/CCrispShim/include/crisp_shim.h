#ifndef CRISP_SHIM_H
#define CRISP_SHIM_H
/* Prefixed wrappers for system calls and macros Glibc does not expose to Swift.
 * Every function returns what the underlying call returns (-1 with errno set on failure). */
#include <stdint.h>
#include <sys/types.h>

/* openat2(2) flags (linux/openat2.h), mirrored so Swift needs no kernel headers. */
#define CRISP_RESOLVE_NO_XDEV       0x01
#define CRISP_RESOLVE_NO_MAGICLINKS 0x02
#define CRISP_RESOLVE_NO_SYMLINKS   0x04
#define CRISP_RESOLVE_BENEATH       0x08
#define CRISP_RESOLVE_IN_ROOT       0x10

/* GNU-only flags Glibc's Swift module hides (they need _GNU_SOURCE). */
#define CRISP_O_PATH         010000000
#define CRISP_AT_EMPTY_PATH  0x1000

int crisp_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);
int crisp_mknodat(int dirfd, const char *path, mode_t mode, unsigned int major, unsigned int minor);
unsigned int crisp_major(uint64_t dev);
unsigned int crisp_minor(uint64_t dev);
int crisp_errno(void);

int crisp_fsetxattr(int fd, const char *name, const void *value, size_t size);
int crisp_lsetxattr(const char *path, const char *name, const void *value, size_t size);
int crisp_setxattr(const char *path, const char *name, const void *value, size_t size);
ssize_t crisp_flistxattr(int fd, char *list, size_t size);
ssize_t crisp_lgetxattr(const char *path, const char *name, void *value, size_t size);
/* O_PATH, which Glibc's Swift module leaves out (it needs _GNU_SOURCE). */
int crisp_o_path(void);
ssize_t crisp_fgetxattr(int fd, const char *name, void *value, size_t size);
/* An anonymous memory file (close-on-exec), for scratch data that never needs a path. */
int crisp_memfd(const char *name);

int crisp_mount(const char *source, const char *target, const char *fstype,
                unsigned long flags, const char *data);
int crisp_umount2(const char *target, int flags);
unsigned long crisp_ms_private(void);
unsigned long crisp_ms_rec(void);
unsigned long crisp_ms_bind(void);
unsigned long crisp_ms_rdonly(void);
int crisp_mnt_detach(void);

int crisp_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags);
unsigned int crisp_rename_noreplace(void);
unsigned int crisp_rename_exchange(void);

ssize_t crisp_copy_file_range(int in, int out, size_t len);
int crisp_flock(int fd, int operation);

/* btrfs ioctls: create a subvolume, snapshot one, delete one (name is a single path component
 * inside the directory dirfd). */
int crisp_btrfs_subvol_create(int dirfd, const char *name);
int crisp_btrfs_snapshot(int srcfd, int dirfd, const char *name);
int crisp_btrfs_subvol_delete(int dirfd, const char *name);
/* statfs f_type of an open file, or 0 with errno set. */
long crisp_fstatfs_type(int fd);

/* mallopt(M_ARENA_MAX, count): 1 on success. */
int crisp_malloc_arena_max(int count);

#endif
