#!/usr/bin/env python3
"""Which functions of a binary run while a command runs, and when each first ran.

    function-coverage.py BINARY OUT -- COMMAND [ARG...]

Puts an entry probe on every function symbol of BINARY (one BPF uprobe_multi link, kernel 6.6
or later), runs COMMAND, and writes one line per function that ran to OUT: its first-run time
(CLOCK_MONOTONIC, ns) and its symbol name, oldest first. Every process that executes BINARY's
file while COMMAND runs is counted. scripts/gen-symbol-order.sh uses it; needs root.

Why BPF by hand: valgrind 3.19 (Debian 12) does not know openat2, which crispd needs for pulls
and pods, and one tracefs uprobe per function costs a kernel RCU wait on removal (minutes per
thousand functions). A uprobe_multi link attaches and detaches ~200,000 probes in under a second.
No BPF library is packaged here for Python, and the program is 17 instructions, so they are
assembled below: the probe's cookie is the function's index, and the program stores the time of
the first hit in an mmap-able array map.
"""
import ctypes
import mmap
import os
import struct
import subprocess
import sys

NR_BPF = 321  # x86_64
BPF_MAP_CREATE, BPF_PROG_LOAD, BPF_LINK_CREATE = 0, 5, 28
BPF_MAP_TYPE_ARRAY, BPF_F_MMAPABLE = 2, 1 << 10
BPF_PROG_TYPE_KPROBE, BPF_TRACE_UPROBE_MULTI = 2, 48
HELPER_MAP_LOOKUP_ELEM, HELPER_KTIME_GET_NS, HELPER_GET_ATTACH_COOKIE = 1, 5, 174

libc = ctypes.CDLL(None, use_errno=True)


def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = libc.syscall(NR_BPF, cmd, buf, len(attr))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({cmd}): {os.strerror(err)}")
    return fd


def functions(binary):
    """(file offset, name) of every sized function symbol; one name per address."""
    segments = []
    for line in subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        f = line.split()
        if f and f[0] == "LOAD" and "E" in f[6:-1]:
            segments.append((int(f[2], 16), int(f[1], 16), int(f[4], 16)))  # vaddr, offset, size in file
    out, seen = [], set()
    nm = subprocess.run(["nm", "--defined-only", "-S", binary], capture_output=True, text=True, check=True).stdout
    for line in nm.splitlines():
        f = line.split()
        if len(f) != 4 or f[2] not in "tTwW" or int(f[1], 16) == 0:
            continue
        address = int(f[0], 16)
        if address in seen:
            continue
        for vaddr, offset, size in segments:
            if vaddr <= address < vaddr + size:
                seen.add(address)
                out.append((address - vaddr + offset, f[3]))
                break
    return out


def insn(code, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def program(map_fd):
    return b"".join([
        insn(0x85, imm=HELPER_GET_ATTACH_COOKIE),        # r0 = cookie (the function's index)
        insn(0x63, 10, 0, -4),                           # *(u32 *)(r10 - 4) = r0
        insn(0x18, 1, 1, 0, map_fd), insn(0),            # r1 = the map
        insn(0xbf, 2, 10),                               # r2 = r10
        insn(0x07, 2, 0, 0, -4),                         # r2 -= 4
        insn(0x85, imm=HELPER_MAP_LOOKUP_ELEM),          # r0 = &map[index]
        insn(0x15, 0, 0, 7, 0),                          # if r0 == 0: return
        insn(0xbf, 6, 0),                                # r6 = r0
        insn(0x79, 1, 6, 0),                             # r1 = *r6
        insn(0x55, 1, 0, 4, 0),                          # if r1 != 0: return (not the first hit)
        insn(0x85, imm=HELPER_KTIME_GET_NS),             # r0 = now
        insn(0x7b, 6, 0, 0),                             # *r6 = r0
        insn(0xb7, 0, 0, 0, 0), insn(0x95),              # return 0
        insn(0xb7, 0, 0, 0, 0), insn(0x95),              # return 0
    ])


def main():
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        sys.exit(__doc__)
    binary, out, command = sys.argv[1], sys.argv[2], sys.argv[4:]
    funcs = functions(binary)
    n = len(funcs)
    map_fd = bpf(BPF_MAP_CREATE, struct.pack("IIIII", BPF_MAP_TYPE_ARRAY, 4, 8, n, BPF_F_MMAPABLE) + bytes(100))
    code = program(map_fd)
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(1 << 16)
    attr = struct.pack("IIQQIIQII16sII", BPF_PROG_TYPE_KPROBE, len(code) // 8, ctypes.addressof(insns),
                       ctypes.addressof(license_), 1, len(log), ctypes.addressof(log), 0, 0, b"crispcoverage",
                       0, BPF_TRACE_UPROBE_MULTI) + bytes(64)
    try:
        prog_fd = bpf(BPF_PROG_LOAD, attr)
    except OSError as e:
        sys.exit(f"function-coverage: the kernel refused the probe program ({e}); uprobe_multi needs Linux 6.6 "
                 f"or later.\n{log.value.decode(errors='replace')}")
    path = ctypes.create_string_buffer(os.path.abspath(binary).encode())
    offsets = (ctypes.c_uint64 * n)(*[o for o, _ in funcs])
    cookies = (ctypes.c_uint64 * n)(*range(n))
    attr = struct.pack("IIIIQQQQIII", prog_fd, 0, BPF_TRACE_UPROBE_MULTI, 0, ctypes.addressof(path),
                       ctypes.addressof(offsets), 0, ctypes.addressof(cookies), n, 0, 0) + bytes(64)
    link_fd = bpf(BPF_LINK_CREATE, attr)
    print(f"function-coverage: {n} functions probed", file=sys.stderr)
    status = subprocess.run(command).returncode
    hits = mmap.mmap(map_fd, n * 8, mmap.MAP_SHARED, mmap.PROT_READ)
    ran = sorted((t, funcs[i][1]) for i in range(n) if (t := struct.unpack_from("<Q", hits, i * 8)[0]))
    os.close(link_fd)
    with open(out, "w") as f:
        f.writelines(f"{t} {name}\n" for t, name in ran)
    print(f"function-coverage: {len(ran)} functions ran", file=sys.stderr)
    sys.exit(status)


if __name__ == "__main__":
    main()
