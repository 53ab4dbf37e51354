/*
 * crisp-pinns: the single-threaded helper that does namespace work for crispd, which is a
 * multithreaded Swift process and must not unshare() or setns() itself.
 *
 *   crisp-pinns create --dir DIR --name NAME [--net] [--ipc] [--uts] [--hostname HOST]
 *       Unshares the requested namespaces and pins each one by bind-mounting /proc/self/ns/X
 *       onto DIR/netns/NAME, DIR/ipcns/NAME, DIR/utsns/NAME (with DIR=/var/run the network
 *       namespace is where `ip netns` looks). In a new network namespace the loopback interface
 *       is brought up. Prints one line "KIND PATH" per pin on stdout. On any failure every pin
 *       made so far is removed again.
 *   crisp-pinns create --dir DIR --name NAME --user --uid-map "C H L" --gid-map "C H L"
 *       Makes a user namespace with those mappings and pins it at DIR/userns/NAME. A child
 *       unshares it and waits; this process, still in the host's user namespace, writes the
 *       maps (only a writer with CAP_SETUID/CAP_SETGID in the parent namespace may map ids
 *       other than its own) and pins /proc/CHILD/ns/user.
 *   crisp-pinns create ... [--net] [--ipc] [--uts] --userns PATH
 *       As the first form, but the namespaces are created inside the user namespace at PATH
 *       (by a child that joins it), so that namespace owns them: a container root in it may
 *       then mount sysfs and mqueue for them.
 *   crisp-pinns remove --dir DIR --name NAME [--net] [--ipc] [--uts] [--user]
 *       Unmounts and unlinks the pins; a pin that does not exist is not an error.
 *   crisp-pinns idmap --userns PATH SRC DST [SRC DST ...]
 *       Mounts each SRC directory again at DST (an existing directory) with its ids mapped
 *       through the user namespace at PATH: open_tree(OPEN_TREE_CLONE), mount_setattr
 *       (MOUNT_ATTR_IDMAP), move_mount. On failure the mounts made so far are detached.
 *   crisp-pinns dial --netns PATH --port PORT [--host IPV4|IPV6]
 *       Enters the network namespace at PATH, connects a TCP socket to HOST:PORT (default
 *       127.0.0.1) and sends the connected descriptor over the unix socket on fd 0 with
 *       SCM_RIGHTS.
 *
 * Exit codes: 0 success, 1 system error (message on stderr), 2 usage error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/mount.h>
#include <unistd.h>

#define EXIT_SYS 1
#define EXIT_USAGE 2

struct nskind {
    const char *flag;   /* command-line flag */
    const char *subdir; /* directory under --dir */
    const char *proc;   /* /proc/self/ns/ entry */
    int clone;          /* unshare flag */
    int wanted;
};

static struct nskind kinds[] = {
    {"--net", "netns", "net", CLONE_NEWNET, 0},
    {"--ipc", "ipcns", "ipc", CLONE_NEWIPC, 0},
    {"--uts", "utsns", "uts", CLONE_NEWUTS, 0},
    {"--user", "userns", "user", CLONE_NEWUSER, 0},
};
#define USER 3
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static void fail(int code, const char *fmt, ...) {
    va_list ap;
    fputs("crisp-pinns: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

static void usage(void) {
    fail(EXIT_USAGE, "usage: crisp-pinns create|remove --dir DIR --name NAME [--net] [--ipc] [--uts] [--user] "
                     "[--hostname HOST] [--uid-map MAP --gid-map MAP] [--userns PATH] | "
                     "crisp-pinns dial --netns PATH --port PORT [--host ADDR] | "
                     "crisp-pinns idmap --userns PATH SRC DST [SRC DST ...]");
}

/* A NAME becomes a file name: no slashes, no dot names, bounded length. */
static int valid_name(const char *n) {
    size_t len = strlen(n);
    if (len == 0 || len > 200 || strcmp(n, ".") == 0 || strcmp(n, "..") == 0) return 0;
    return strchr(n, '/') == NULL;
}

static int mkdir_p(const char *path, mode_t mode) {
    char buf[4096];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) { errno = ENAMETOOLONG; return -1; }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, mode) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* Makes the pin directory a shared mount point (as `ip netns` does), so that a pin removed later
 * also disappears from mount namespaces created after it was made. */
static int make_shared(const char *dir) {
    if (mount("", dir, "none", MS_SHARED | MS_REC, NULL) == 0) return 0;
    if (errno != EINVAL) return -1;
    if (mount(dir, dir, "none", MS_BIND | MS_REC, NULL) != 0) return -1;
    return mount("", dir, "none", MS_SHARED | MS_REC, NULL);
}

static int remove_pin(const char *path) {
    int rc = 0;
    if (umount2(path, MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) rc = -1;
    if (unlink(path) != 0 && errno != ENOENT) rc = -1;
    return rc;
}

static int loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "lo");
    int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (rc == 0 && !(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        rc = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    int e = errno;
    close(s);
    errno = e;
    return rc;
}

/* A child that makes (or joins, then makes) namespaces and waits until released, so their
 * /proc/PID/ns files can be pinned from this process, which stays in the host's user namespace
 * and keeps the capabilities mounting needs there. */
struct holder { pid_t pid; int release; };

static int hold(struct holder *h, int userns_fd, int flags, const char *hostname) {
    int ready[2], release[2];
    if (pipe2(ready, O_CLOEXEC) != 0) return -1;
    if (pipe2(release, O_CLOEXEC) != 0) { close(ready[0]); close(ready[1]); return -1; }
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(ready[0]);
        close(release[1]);
        if (userns_fd >= 0 && setns(userns_fd, CLONE_NEWUSER) != 0) fail(EXIT_SYS, "setns user: %s", strerror(errno));
        if (flags && unshare(flags) != 0) fail(EXIT_SYS, "unshare(0x%x): %s", flags, strerror(errno));
        if (hostname && sethostname(hostname, strlen(hostname)) != 0) fail(EXIT_SYS, "sethostname %s: %s", hostname, strerror(errno));
        if ((flags & CLONE_NEWNET) && loopback_up() != 0) fail(EXIT_SYS, "bring up lo: %s", strerror(errno));
        char b = 'R';
        if (write(ready[1], &b, 1) != 1) _exit(EXIT_SYS);
        while (read(release[0], &b, 1) < 0 && errno == EINTR) {}
        _exit(0);
    }
    close(ready[1]);
    close(release[0]);
    char b;
    ssize_t n;
    do { n = read(ready[0], &b, 1); } while (n < 0 && errno == EINTR);
    close(ready[0]);
    h->pid = pid;
    h->release = release[1];
    if (n != 1) { errno = ECHILD; return -1; }
    return 0;
}

static void unhold(struct holder *h) {
    if (h->pid <= 0) return;
    close(h->release);
    while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR) {}
    h->pid = 0;
}

/* "C H L" → the uid_map line; checked so nothing but three numbers reaches the kernel. */
static int write_map(pid_t pid, const char *file, const char *map) {
    unsigned long c, h, l;
    char extra;
    if (sscanf(map, "%lu %lu %lu %c", &c, &h, &l, &extra) != 3) { errno = EINVAL; return -1; }
    char path[64], line[96];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    int len = snprintf(line, sizeof(line), "%lu %lu %lu\n", c, h, l);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, line, (size_t)len);
    int e = errno;
    close(fd);
    errno = e;
    return n == len ? 0 : -1;
}

static int cmd_create(const char *dir, const char *name, const char *hostname, const char *uidmap, const char *gidmap,
                      const char *userns) {
    char paths[NKINDS][4096];
    int made[NKINDS] = {0};
    int flags = 0;
    struct holder user = {0}, others = {0};
    int userns_fd = -1;
    for (size_t i = 0; i < NKINDS; i++) if (kinds[i].wanted && i != USER) flags |= kinds[i].clone;
    if (flags == 0 && !kinds[USER].wanted) fail(EXIT_USAGE, "create: no namespace requested (--net, --ipc, --uts, --user)");
    if (hostname && !kinds[2].wanted) fail(EXIT_USAGE, "create: --hostname needs --uts");
    if (kinds[USER].wanted && (!uidmap || !gidmap)) fail(EXIT_USAGE, "create: --user needs --uid-map and --gid-map");
    if (kinds[USER].wanted && userns) fail(EXIT_USAGE, "create: --user and --userns exclude each other");

    /* Pin files first, so a name clash is reported before anything is unshared. */
    for (size_t i = 0; i < NKINDS; i++) {
        if (!kinds[i].wanted) continue;
        char sub[4096];
        snprintf(sub, sizeof(sub), "%s/%s", dir, kinds[i].subdir);
        if (mkdir_p(sub, 0755) != 0) { fprintf(stderr, "crisp-pinns: mkdir %s: %s\n", sub, strerror(errno)); goto undo; }
        if (i == 0 && make_shared(sub) != 0) {
            fprintf(stderr, "crisp-pinns: make %s a shared mount: %s\n", sub, strerror(errno));
            goto undo;
        }
        snprintf(paths[i], sizeof(paths[i]), "%s/%s", sub, name);
        int fd = open(paths[i], O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
        if (fd < 0) {
            fprintf(stderr, "crisp-pinns: create pin %s: %s\n", paths[i], strerror(errno));
            goto undo;
        }
        close(fd);
        made[i] = 1;
    }
    if (!kinds[USER].wanted && !userns) {
        /* Namespaces owned by the host's user namespace: this process makes them itself. */
        if (unshare(flags) != 0) { fprintf(stderr, "crisp-pinns: unshare(0x%x): %s\n", flags, strerror(errno)); goto undo; }
        if (hostname && sethostname(hostname, strlen(hostname)) != 0) {
            fprintf(stderr, "crisp-pinns: sethostname %s: %s\n", hostname, strerror(errno));
            goto undo;
        }
        if (kinds[0].wanted && loopback_up() != 0) {
            fprintf(stderr, "crisp-pinns: bring up lo: %s\n", strerror(errno));
            goto undo;
        }
    } else {
        if (kinds[USER].wanted) {
            if (hold(&user, -1, CLONE_NEWUSER, NULL) != 0) { fprintf(stderr, "crisp-pinns: make user namespace: %s\n", strerror(errno)); goto undo; }
            if (write_map(user.pid, "uid_map", uidmap) != 0) { fprintf(stderr, "crisp-pinns: uid_map \"%s\": %s\n", uidmap, strerror(errno)); goto undo; }
            if (write_map(user.pid, "gid_map", gidmap) != 0) { fprintf(stderr, "crisp-pinns: gid_map \"%s\": %s\n", gidmap, strerror(errno)); goto undo; }
        } else {
            userns_fd = open(userns, O_RDONLY | O_CLOEXEC);
            if (userns_fd < 0) { fprintf(stderr, "crisp-pinns: open user namespace %s: %s\n", userns, strerror(errno)); goto undo; }
        }
        if (flags && hold(&others, userns_fd, flags, hostname) != 0) {
            fprintf(stderr, "crisp-pinns: make namespaces in user namespace %s: %s\n", userns ? userns : "(new)", strerror(errno));
            goto undo;
        }
    }
    for (size_t i = 0; i < NKINDS; i++) {
        if (!kinds[i].wanted) continue;
        char src[64];
        pid_t pid = i == USER ? user.pid : others.pid;
        if (pid > 0) snprintf(src, sizeof(src), "/proc/%d/ns/%s", (int)pid, kinds[i].proc);
        else snprintf(src, sizeof(src), "/proc/self/ns/%s", kinds[i].proc);
        if (mount(src, paths[i], "none", MS_BIND, NULL) != 0) {
            fprintf(stderr, "crisp-pinns: bind %s onto %s: %s\n", src, paths[i], strerror(errno));
            goto undo;
        }
    }
    unhold(&others);
    unhold(&user);
    if (userns_fd >= 0) close(userns_fd);
    for (size_t i = 0; i < NKINDS; i++)
        if (kinds[i].wanted) printf("%s %s\n", kinds[i].proc, paths[i]);
    if (fflush(stdout) != 0) goto undo;
    return 0;
undo:
    unhold(&others);
    unhold(&user);
    for (size_t i = 0; i < NKINDS; i++)
        if (made[i]) remove_pin(paths[i]);
    return EXIT_SYS;
}

static int cmd_idmap(const char *userns, char **pairs, int n) {
    if (n == 0 || n % 2 != 0) fail(EXIT_USAGE, "idmap: want SRC DST pairs");
    int nsfd = open(userns, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) fail(EXIT_SYS, "idmap: open user namespace %s: %s", userns, strerror(errno));
    int i;
    for (i = 0; i < n; i += 2) {
        int tree = (int)syscall(SYS_open_tree, AT_FDCWD, pairs[i], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (tree < 0) { fprintf(stderr, "crisp-pinns: idmap: open_tree %s: %s\n", pairs[i], strerror(errno)); break; }
        struct mount_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.attr_set = MOUNT_ATTR_IDMAP;
        attr.userns_fd = (unsigned long long)nsfd;
        if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
            fprintf(stderr, "crisp-pinns: idmap: map %s through %s: %s\n", pairs[i], userns, strerror(errno));
            close(tree);
            break;
        }
        if (syscall(SYS_move_mount, tree, "", AT_FDCWD, pairs[i + 1], MOVE_MOUNT_F_EMPTY_PATH) != 0) {
            fprintf(stderr, "crisp-pinns: idmap: attach at %s: %s\n", pairs[i + 1], strerror(errno));
            close(tree);
            break;
        }
        close(tree);
    }
    if (i >= n) return 0;
    for (int k = 0; k < i; k += 2) umount2(pairs[k + 1], MNT_DETACH);
    return EXIT_SYS;
}

static int cmd_remove(const char *dir, const char *name) {
    int any = 0, rc = 0;
    for (size_t i = 0; i < NKINDS; i++) {
        if (!kinds[i].wanted) continue;
        any = 1;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s/%s", dir, kinds[i].subdir, name);
        if (remove_pin(path) != 0) {
            fprintf(stderr, "crisp-pinns: remove pin %s: %s\n", path, strerror(errno));
            rc = EXIT_SYS;
        }
    }
    if (!any) fail(EXIT_USAGE, "remove: no namespace requested (--net, --ipc, --uts, --user)");
    return rc;
}

static int send_fd(int sock, int fd) {
    char byte = 'F';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t n;
    do { n = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : -1;
}

static int cmd_dial(const char *netns, const char *portstr, const char *host) {
    char *end = NULL;
    long port = strtol(portstr, &end, 10);
    if (!end || *end || port < 1 || port > 65535) fail(EXIT_USAGE, "dial: invalid port \"%s\"", portstr);
    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET; v4->sin_port = htons((uint16_t)port); sslen = sizeof(*v4);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6; v6->sin6_port = htons((uint16_t)port); sslen = sizeof(*v6);
    } else {
        fail(EXIT_USAGE, "dial: invalid address \"%s\"", host);
    }
    struct stat st;
    if (fstat(0, &st) != 0 || !S_ISSOCK(st.st_mode)) fail(EXIT_USAGE, "dial: fd 0 must be a unix socket");
    int nsfd = open(netns, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) fail(EXIT_SYS, "dial: open netns %s: %s", netns, strerror(errno));
    if (setns(nsfd, CLONE_NEWNET) != 0) fail(EXIT_SYS, "dial: setns %s: %s", netns, strerror(errno));
    close(nsfd);
    int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) fail(EXIT_SYS, "dial: socket: %s", strerror(errno));
    int rc;
    do { rc = connect(s, (struct sockaddr *)&ss, sslen); } while (rc != 0 && errno == EINTR);
    if (rc != 0) fail(EXIT_SYS, "dial: connect %s port %ld in %s: %s", host, port, netns, strerror(errno));
    if (send_fd(0, s) != 0) fail(EXIT_SYS, "dial: send descriptor: %s", strerror(errno));
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    const char *cmd = argv[1];
    const char *dir = NULL, *name = NULL, *hostname = NULL, *netns = NULL, *port = NULL, *host = "127.0.0.1";
    const char *uidmap = NULL, *gidmap = NULL, *userns = NULL;
    if (strcmp(cmd, "idmap") == 0) {
        if (argc < 4 || strcmp(argv[2], "--userns") != 0) usage();
        return cmd_idmap(argv[3], argv + 4, argc - 4);
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int matched = 0;
        for (size_t k = 0; k < NKINDS; k++)
            if (strcmp(a, kinds[k].flag) == 0) { kinds[k].wanted = 1; matched = 1; }
        if (matched) continue;
        const char **slot = NULL;
        if (strcmp(a, "--dir") == 0) slot = &dir;
        else if (strcmp(a, "--name") == 0) slot = &name;
        else if (strcmp(a, "--hostname") == 0) slot = &hostname;
        else if (strcmp(a, "--netns") == 0) slot = &netns;
        else if (strcmp(a, "--port") == 0) slot = &port;
        else if (strcmp(a, "--host") == 0) slot = &host;
        else if (strcmp(a, "--uid-map") == 0) slot = &uidmap;
        else if (strcmp(a, "--gid-map") == 0) slot = &gidmap;
        else if (strcmp(a, "--userns") == 0) slot = &userns;
        else fail(EXIT_USAGE, "unknown argument \"%s\"", a);
        if (i + 1 >= argc) fail(EXIT_USAGE, "%s needs a value", a);
        *slot = argv[++i];
    }
    if (strcmp(cmd, "dial") == 0) {
        if (!netns || !port) usage();
        return cmd_dial(netns, port, host);
    }
    if (strcmp(cmd, "create") != 0 && strcmp(cmd, "remove") != 0) usage();
    if (!dir || !name) usage();
    if (dir[0] != '/') fail(EXIT_USAGE, "--dir must be absolute, got \"%s\"", dir);
    if (!valid_name(name)) fail(EXIT_USAGE, "invalid --name \"%s\": want a single file name", name);
    if (hostname && strlen(hostname) > 64) fail(EXIT_USAGE, "hostname \"%s\" is longer than 64 bytes", hostname);
    return strcmp(cmd, "create") == 0 ? cmd_create(dir, name, hostname, uidmap, gidmap, userns) : cmd_remove(dir, name);
}
