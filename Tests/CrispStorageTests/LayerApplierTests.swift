import CrispCore
import CrispOS
import CrispTestSupport
import Glibc
import Testing
@testable import CrispStorage

/// security.capability v2 value granting CAP_NET_BIND_SERVICE (bit 10) permitted+effective.
let netBindCapability: [UInt8] = [0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]

let longName = "deep/" + String(repeating: "n", count: 150) + "/file-with-a-long-name-" + String(repeating: "x", count: 80)

func fidelityEntries() -> [TarEntry] {
    [
        TarEntry("./", .directory, mode: 0o755),
        .dir("etc"),
        TarEntry("tmp", .directory, mode: 0o1777),
        TarEntry("etc/passwd", .file(.bytes(Array("root:x:0:0::/root:/bin/sh\n".utf8))), mode: 0o644, uid: 0, gid: 0, mtime: 1_600_000_000),
        TarEntry("bin/su", .file(.bytes(Array("#!/bin/sh\n".utf8))), mode: 0o4755, uid: 0, gid: 0),
        TarEntry("bin/wall", .file(.bytes([1, 2, 3])), mode: 0o2755, uid: 0, gid: 5),
        TarEntry("home/user/notes", .file(.bytes(Array("hi".utf8))), mode: 0o600, uid: 1000, gid: 2000),
        TarEntry("bin/ping", .file(.bytes([0x7f, 0x45])), mode: 0o755, xattrs: [("security.capability", netBindCapability)]),
        TarEntry("etc/xattr", .file(.bytes([])), xattrs: [("user.crisp", Array("value".utf8)), ("trusted.overlay.opaque", Array("y".utf8))]),
        TarEntry("bin/sh", .symlink("/bin/busybox"), uid: 1000, gid: 1000),
        .hardlink("bin/su-link", to: "bin/su"),
        TarEntry("dev/null", .characterDevice(major: 1, minor: 3), mode: 0o666),
        TarEntry("dev/loop9", .blockDevice(major: 7, minor: 9), mode: 0o660, gid: 6),
        TarEntry("run/fifo", .fifo, mode: 0o620),
        TarEntry(longName, .file(.bytes(Array("long".utf8)))),
        TarEntry("big", .file(.pattern(size: 3 << 20, seed: 7))),
    ]
}

@Suite("LayerApplier")
struct LayerApplierTests {
    @Test("every entry type with owner, mode, times and xattrs", arguments: [WhiteoutFormat.remove, .overlay])
    func fidelity(format: WhiteoutFormat) throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let root = tmp.sub("layer")
        makeDir(root)
        let tar = try TarBuilder.build(fidelityEntries())
        let result = try apply(tar, to: root, whiteouts: format, expect: diffDigest(of: tar))
        #expect(result.diffDigest == diffDigest(of: tar))
        #expect(result.streamSize == Int64(tar.count))

        #expect(fileText(root + "/etc/passwd") == "root:x:0:0::/root:/bin/sh\n")
        #expect(lstatOf(root + "/etc/passwd")?.st_mtim.tv_sec == 1_600_000_000)
        #expect(lstatOf(root + "/etc")?.st_mtim.tv_sec == 1_700_000_000, "directory mtime set after its children")
        #expect(lstatOf(root + "/tmp")!.st_mode & 0o7777 == 0o1777)
        #expect(lstatOf(root + "/bin/su")!.st_mode & 0o7777 == 0o4755)
        let wall = lstatOf(root + "/bin/wall")!
        #expect(wall.st_mode & 0o7777 == 0o2755 && wall.st_gid == 5)
        let notes = lstatOf(root + "/home/user/notes")!
        #expect(notes.st_uid == 1000 && notes.st_gid == 2000 && notes.st_mode & 0o7777 == 0o600)
        #expect(xattr(root + "/bin/ping", "security.capability") == netBindCapability)
        #expect(xattr(root + "/etc/xattr", "user.crisp") == Array("value".utf8))
        #expect(xattr(root + "/etc/xattr", "trusted.overlay.opaque") == nil, "layers cannot forge overlay xattrs")
        let sh = lstatOf(root + "/bin/sh")!
        #expect(sh.st_mode & S_IFMT == S_IFLNK && sh.st_uid == 1000)
        var buf = [CChar](repeating: 0, count: 256)
        let n = readlink(root + "/bin/sh", &buf, 255)
        #expect(n > 0 && String(cString: Array(buf[0..<n]) + [0]) == "/bin/busybox")
        #expect(lstatOf(root + "/bin/su-link")?.st_ino == lstatOf(root + "/bin/su")?.st_ino)
        #expect(lstatOf(root + "/bin/su")?.st_nlink == 2)
        let null = lstatOf(root + "/dev/null")!
        #expect(null.st_mode & S_IFMT == S_IFCHR && null.st_rdev == makedevice(1, 3) && null.st_mode & 0o777 == 0o666)
        let loop = lstatOf(root + "/dev/loop9")!
        #expect(loop.st_mode & S_IFMT == S_IFBLK && loop.st_rdev == makedevice(7, 9) && loop.st_gid == 6)
        let fifo = lstatOf(root + "/run/fifo")!
        #expect(fifo.st_mode & S_IFMT == S_IFIFO && fifo.st_mode & 0o777 == 0o620)
        #expect(fileText(root + "/" + longName) == "long")
        #expect(lstatOf(root + "/big")?.st_size == 3 << 20)
    }

    @Test("a diff digest mismatch fails the apply")
    func digestMismatch() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        makeDir(tmp.sub("layer"))
        let tar = try TarBuilder.build([.file("a", "a")])
        let wrong = diffDigest(of: [1, 2, 3])
        #expect(throws: CrispError.self) { try apply(tar, to: tmp.sub("layer"), expect: wrong) }
    }

    @Test("whiteouts and opaque directories remove lower content from a copy")
    func removeWhiteouts() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let root = tmp.sub("layer")
        makeDir(root)
        _ = try apply(try TarBuilder.build([.file("a/keep", "1"), .file("a/gone", "2"), .file("o/old", "3"), .file("o/sub/old", "4"), .file("top", "5")]), to: root)
        _ = try apply(try TarBuilder.build([.file(".wh.top", ""), .file("a/.wh.gone", ""), .file("o/new", "6"), .dir("o/sub"), .file("o/sub/new2", "7"), .file("o/.wh..wh..opq", "")]), to: root)
        #expect(listing(root) == ["a", "o"])
        #expect(listing(root + "/a") == ["keep"])
        #expect(listing(root + "/o") == ["new", "sub"])
        #expect(listing(root + "/o/sub") == ["new2"])
    }

    @Test("overlay whiteouts are 0/0 character devices and opaque directories carry the xattr")
    func overlayWhiteouts() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let root = tmp.sub("layer")
        makeDir(root)
        _ = try apply(try TarBuilder.build([.file(".wh.top", ""), .dir("o"), .file("o/.wh..wh..opq", ""), .file("o/new", "n")]), to: root, whiteouts: .overlay)
        let w = lstatOf(root + "/top")!
        #expect(w.st_mode & S_IFMT == S_IFCHR && w.st_rdev == 0)
        #expect(xattr(root + "/o", "trusted.overlay.opaque") == Array("y".utf8))
        #expect(listing(root + "/o") == ["new"])
    }

    @Test("a hard link to a file of a lower layer copies it up")
    func hardLinkToLowerLayer() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let lower = tmp.sub("lower"), upper = tmp.sub("upper")
        makeDir(lower); makeDir(upper)
        _ = try apply(try TarBuilder.build([TarEntry("usr/bin/tool", .file(.bytes(Array("tool".utf8))), mode: 0o4711, uid: 7, gid: 8, xattrs: [("user.k", [1])])]), to: lower, whiteouts: .overlay)
        _ = try apply(try TarBuilder.build([.hardlink("usr/bin/alias", to: "usr/bin/tool")]), to: upper, whiteouts: .overlay, lowers: [lower])
        let a = lstatOf(upper + "/usr/bin/alias")!, t = lstatOf(upper + "/usr/bin/tool")!
        #expect(a.st_ino == t.st_ino && t.st_mode & 0o7777 == 0o4711 && t.st_uid == 7 && t.st_gid == 8)
        #expect(fileText(upper + "/usr/bin/alias") == "tool")
        #expect(xattr(upper + "/usr/bin/tool", "user.k") == [1])
    }

    @Test("a streamed layer (async chunks) applies through the bounded channel")
    func streamedChunks() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let root = tmp.sub("layer")
        makeDir(root)
        let tar = try TarBuilder.build([TarEntry("f", .file(.pattern(size: 5 << 20, seed: 1))), .file("g", "g")])
        let channel = ChannelSource(ByteChannel(capacity: 256 << 10))
        let producer = Task {
            var i = 0
            while i < tar.count {
                let end = min(tar.count, i + 10_000)
                guard await channel.send(Array(tar[i..<end])) else { return }
                i = end
            }
            channel.channel.finish()
        }
        let result = try await runOnThread {
            try LayerApplier.apply(source: channel, to: ApplyTarget(root: root, whiteouts: .remove, expectedDigest: diffDigest(of: tar)))
        }
        await producer.value
        #expect(result.diffDigest == diffDigest(of: tar))
        #expect(lstatOf(root + "/f")?.st_size == 5 << 20)
    }
}

func makedevice(_ major: UInt32, _ minor: UInt32) -> UInt {
    UInt(minor & 0xff) | UInt(major & 0xfff) << 8 | UInt(minor & ~0xff) << 12 | UInt(major & ~0xfff) << 32
}
