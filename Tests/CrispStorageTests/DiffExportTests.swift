import CrispCore
import CrispOS
import CCrispShim
import CrispTestSupport
import Glibc
import Testing
@testable import CrispStorage

/// A name that is not valid UTF-8 (byte 0xff).
let nonUTF8Name = RawPath(Array("bad".utf8) + [0xff] + Array("name".utf8))

/// `path` (a String prefix) joined with raw bytes, NUL-terminated for C calls.
func rawPath(_ base: String, _ rest: RawPath) -> [CChar] { RawPath(base).appending(rest).c }

@Suite("Container diff export")
struct DiffExportTests {
    @Test("the exported diff applied on the image's top layer reproduces the container's view", arguments: copyAndOverlayDrivers)
    func roundTrip(driver: String) async throws {
        try await withStorage(driver) { f in try await Self.roundTrip(f) }
    }

    @Test("the exported diff round-trips on btrfs")
    func roundTripBtrfs() async throws {
        try await BtrfsDriverTests.withBtrfs { mnt in
            try await withStorage("btrfs", root: mnt + "/root") { f in try await Self.roundTrip(f) }
        }
    }

    static func roundTrip(_ f: StorageFixture) async throws {
        let s = f.storage
        let base = try await f.layer([
            .file("etc/passwd", "root:x:0:0\n"), .file("etc/gone", "bye"), .file("dir/a", "a"), .file("dir/sub/b", "b"),
            .file("keep/k", "k"), TarEntry("bin/tool", .file(.bytes(Array("tool".utf8))), mode: 0o755),
        ])
        let image = try await f.image("example.com/diff:1", top: base)
        let c = try await s.createContainer(CreateContainerOptions(name: "changed", imageID: image.id))
        let root = try await s.mountContainer(c.id)

        // What a container does to its rootfs.
        #expect(mkdir(root + "/new", 0o750) == 0)
        try writeFile(root + "/new/file", Array("new content".utf8))
        #expect(chown(root + "/new/file", 1000, 2000) == 0 && chmod(root + "/new/file", 0o4750) == 0)
        #expect(crisp_setxattr(root + "/new/file", "user.k", "v", 1) == 0)
        #expect(link(root + "/new/file", root + "/new/file2") == 0)
        #expect(symlink("../etc/passwd", root + "/new/link") == 0)
        #expect(mknod(root + "/new/null", S_IFCHR | 0o666, makedevice(1, 3)) == 0)
        #expect(mkfifo(root + "/new/fifo", 0o620) == 0)
        let odd = open(rawPath(root + "/new", nonUTF8Name), O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        #expect(odd >= 0)
        _ = write(odd, "odd", 3)
        close(odd)
        try writeFile(root + "/etc/passwd", Array("root:x:0:0\nuser:x:1000:1000\n".utf8))
        #expect(unlink(root + "/etc/gone") == 0)
        try DirectoryWalk.removeTree(root + "/dir")
        #expect(mkdir(root + "/dir", 0o700) == 0)
        try writeFile(root + "/dir/fresh", Array("fresh".utf8))
        #expect(chmod(root + "/keep/k", 0o600) == 0)
        var ts = [timespec(tv_sec: 1_650_000_000, tv_nsec: 123_456_789), timespec(tv_sec: 1_650_000_000, tv_nsec: 123_456_789)]
        #expect(utimensat(AT_FDCWD, root + "/new/file", &ts, 0) == 0)

        // Export, then apply the diff as a new layer on the same parent.
        let tarPath = f.tmp.sub("diff.tar")
        let out = open(tarPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        #expect(out >= 0)
        let diff: LayerDiff
        do { diff = try await s.exportContainerChanges(c.id, to: out) } catch { close(out); throw error }
        close(out)
        let tar = try readFile(tarPath)
        #expect(Int64(tar.count) == diff.size && diffDigest(of: tar) == diff.diffDigest)
        let members = try runCommand(["/usr/bin/tar", "-tvf", tarPath]).output
        #expect(members.contains("etc/.wh.gone") && members.contains("etc/passwd") && members.contains("keep/k"))
        #expect(members.contains("new/file2 link to new/file"), "a hard link within the diff stays a link")
        if f.driver == "overlay" {
            #expect(members.contains("dir/.wh..wh..opq"), "the replaced directory is opaque")
        } else {
            #expect(members.contains("dir/.wh.a") && members.contains("dir/.wh.sub"), "the old children are whited out")
        }
        #expect(!members.contains("bin/tool") && !members.contains("dir/sub/b"), "unchanged or deleted content is not carried")
        let input = open(tarPath, O_RDONLY | O_CLOEXEC)
        defer { close(input) }
        let applied = try await s.applyLayer(CreateLayerOptions(id: .chainID(parent: base.id, diffDigest: diff.diffDigest), parent: base.id,
                                                                expectedDiffDigest: diff.diffDigest), fileDescriptor: input)
        let image2 = try await f.image("example.com/diff:2", top: applied)
        let c2 = try await s.createContainer(CreateContainerOptions(name: "replayed", imageID: image2.id))
        let root2 = try await s.mountContainer(c2.id)

        #expect(listing(root + "/dir") == ["fresh"], "the replaced directory hides the old content")
        #expect(lstatOf(root2 + "/etc/gone") == nil)
        #expect(lstatOf(root2 + "/dir/a") == nil && lstatOf(root2 + "/dir/sub") == nil)
        #expect(lstatOf(root2 + "/new/bad\u{FFFD}name") == nil, "the name was not turned into its U+FFFD spelling")
        var st = stat()
        #expect(lstat(rawPath(root2 + "/new", nonUTF8Name), &st) == 0, "a non-UTF-8 name survives the round trip byte-exact")
        var differences: [String] = []
        try compareTrees(root, root2, .root, &differences)
        #expect(differences.isEmpty, "\(differences)")
        try await s.unmountContainer(c.id)
        try await s.unmountContainer(c2.id)
    }
}

/// Records every difference between two trees as a tar would see them: names (bytes), types,
/// modes, owners, sizes and contents, mtimes (directories too, except the root), symlink
/// targets, device numbers, xattrs and link counts.
func compareTrees(_ a: String, _ b: String, _ dir: RawPath, _ out: inout [String]) throws {
    func open(_ base: String) throws -> Int32 {
        let p = RawPath(base).appending(dir).c
        return try syscallChecked("open", base) { Glibc.open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
    }
    let fa = try open(a), fb = try open(b)
    defer { close(fa); close(fb) }
    let namesA = try DirectoryWalk.entries(of: fa, subject: a).map(\.name).sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
    let namesB = try DirectoryWalk.entries(of: fb, subject: b).map(\.name).sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
    guard namesA == namesB else {
        out.append("\(dir): entries \(namesA) vs \(namesB)")
        return
    }
    for name in namesA {
        let path = dir.appending(name)
        var sa = stat(), sb = stat()
        guard fstatat(fa, name.c, &sa, AT_SYMLINK_NOFOLLOW) == 0, fstatat(fb, name.c, &sb, AT_SYMLINK_NOFOLLOW) == 0 else {
            out.append("\(path): stat failed"); continue
        }
        let type = sa.st_mode & S_IFMT
        if sa.st_mode != sb.st_mode || sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid {
            out.append("\(path): mode/owner \(String(sa.st_mode, radix: 8)) \(sa.st_uid):\(sa.st_gid) vs \(String(sb.st_mode, radix: 8)) \(sb.st_uid):\(sb.st_gid)")
        }
        if sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec {
            out.append("\(path): mtime \(sa.st_mtim.tv_sec).\(sa.st_mtim.tv_nsec) vs \(sb.st_mtim.tv_sec).\(sb.st_mtim.tv_nsec)")
        }
        let va = RawPath(procFDPath(fa)).appending(name).c, vb = RawPath(procFDPath(fb)).appending(name).c
        let xa = (listXattrs(va) ?? []).split(separator: 0).map { Array($0) }.sorted { $0.lexicographicallyPrecedes($1) }
        let xb = (listXattrs(vb) ?? []).split(separator: 0).map { Array($0) }.sorted { $0.lexicographicallyPrecedes($1) }
        if xa != xb { out.append("\(path): xattr names differ") }
        switch type {
        case S_IFREG:
            if sa.st_nlink != sb.st_nlink { out.append("\(path): nlink \(sa.st_nlink) vs \(sb.st_nlink)") }
            if try readAt(fa, name) != readAt(fb, name) { out.append("\(path): content differs") }
            for key in xa {
                var bufA = [UInt8](repeating: 0, count: 4096), bufB = bufA
                let k = String(decoding: key, as: UTF8.self)
                let na = crisp_lgetxattr(va, k, &bufA, bufA.count), nb = crisp_lgetxattr(vb, k, &bufB, bufB.count)
                if na != nb || bufA[0..<max(0, na)] != bufB[0..<max(0, nb)] { out.append("\(path): xattr \(k) differs") }
            }
        case S_IFLNK:
            var ba = [CChar](repeating: 0, count: 4096), bb = ba
            let na = readlinkat(fa, name.c, &ba, 4095), nb = readlinkat(fb, name.c, &bb, 4095)
            if na != nb || ba[0..<max(0, na)] != bb[0..<max(0, nb)] { out.append("\(path): symlink target differs") }
        case S_IFCHR, S_IFBLK:
            if sa.st_rdev != sb.st_rdev { out.append("\(path): rdev differs") }
        case S_IFDIR:
            try compareTrees(a, b, path, &out)
        default:
            break
        }
    }
}

/// The content of the regular file `name` (bytes) in directory `dirfd`.
func readAt(_ dirfd: Int32, _ name: RawPath) throws -> [UInt8] {
    let fd = try syscallChecked("openat", "\(name)") { openat(dirfd, name.c, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
    defer { close(fd) }
    var data: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = try buf.withUnsafeMutableBytes { b in try syscallChecked("read", "\(name)") { read(fd, b.baseAddress, b.count) } }
        if n == 0 { return data }
        data += buf[0..<n]
    }
}
