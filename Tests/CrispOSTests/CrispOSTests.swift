import CrispCore
import CrispTestSupport
import Foundation
import Glibc
import Testing
@testable import CrispOS

@Suite("CrispOS")
struct CrispOSTests {
    @Test("SafeRoot resolves .., absolute paths and symlinks inside the root")
    func safeRootStaysInside() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        mkdir(tmp.sub("root"), 0o755)
        mkdir(tmp.sub("outside"), 0o755)
        try writeFile(tmp.sub("outside/secret"), [1])
        try writeFile(tmp.sub("root/secret"), [2])
        symlink(tmp.sub("outside"), tmp.sub("root/abs"))
        symlink("../../outside", tmp.sub("root/rel"))
        let root = try SafeRoot(path: tmp.sub("root"))
        for path in ["../outside/secret", "/secret", "abs/secret", "rel/secret", "../../../secret"] {
            let fd = try? root.open(path, flags: O_RDONLY)
            if let fd {
                var b: UInt8 = 0
                #expect(read(fd, &b, 1) == 1 && b == 2, "\(path) must not reach the outside secret")
                close(fd)
            }
        }
        // The magic link /proc/self/fd is refused even when the root contains a link to it.
        symlink("/proc/self/root", tmp.sub("root/magic"))
        #expect(throws: SystemCallError.self) { _ = try root.open("magic/etc/passwd", flags: O_RDONLY) }
    }

    @Test("splitPath", arguments: [("a/b/c", "a/b", "c"), ("c", "", "c"), ("a/b/", "a", "b"), ("/x", "", "x")])
    func split(input: String, dir: String, name: String) {
        let r = splitPath(input)
        #expect(r.dir == dir && r.name == name)
    }

    @Test("mountinfo octal escapes are decoded")
    func unescape() {
        #expect(Mounts.unescape("/a\\040b\\011c") == "/a b\tc")
        #expect(Mounts.unescape("/plain") == "/plain")
    }

    @Test("the propagation of the mount holding a path comes from mountinfo's optional fields")
    func propagation() {
        let info = """
            27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
            40 27 0:50 / /srv rw shared:7 - tmpfs none rw
            41 40 0:51 / /srv/slave rw master:7 - tmpfs none rw
            42 40 0:52 / /srv/both rw shared:9 master:7 - tmpfs none rw
            43 27 0:53 / /a\\040b rw shared:3 - tmpfs none rw
            """
        #expect(Mounts.propagation(of: "/var/lib/x", mountinfo: info)! == ("/", .private))
        #expect(Mounts.propagation(of: "/srv/data", mountinfo: info)! == ("/srv", .shared))
        #expect(Mounts.propagation(of: "/srv/slave/d", mountinfo: info)! == ("/srv/slave", .slave))
        #expect(Mounts.propagation(of: "/srv/both", mountinfo: info)! == ("/srv/both", .shared))
        #expect(Mounts.propagation(of: "/srv/slaveish", mountinfo: info)! == ("/srv", .shared))
        #expect(Mounts.propagation(of: "/a b/c", mountinfo: info)! == ("/a b", .shared))
    }

    @Test("an exclusive file lock refuses a second holder until released")
    func fileLock() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let first = try FileLock(exclusive: tmp.sub("lock"))
        #expect(throws: CrispError.self) { _ = try FileLock(exclusive: tmp.sub("lock"), grace: .milliseconds(20)) }
        first.unlock()
        let second = try FileLock(exclusive: tmp.sub("lock"))
        second.unlock()
    }

    /// Found in CI: a storage closed and opened again at once was refused, because a child that
    /// another test was spawning still shared the lock's file description. A holder that lets go
    /// within the grace is waited for.
    @Test("a lock released during the grace is taken")
    func fileLockGrace() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let first = try FileLock(exclusive: tmp.sub("lock"))
        let started = ContinuousClock.now
        // The delay is the scenario (a holder that lets go late), not a wait for an event.
        let releaser = Thread { usleep(50_000); first.unlock() }
        releaser.start()
        let second = try FileLock(exclusive: tmp.sub("lock"), grace: .seconds(5))
        #expect(ContinuousClock.now - started < .seconds(5))
        second.unlock()
    }

    @Test("removeTree removes symlinks without following them; usage counts hard links once")
    func removeAndUsage() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        mkdir(tmp.sub("keep"), 0o755)
        try writeFile(tmp.sub("keep/file"), [1])
        mkdir(tmp.sub("tree"), 0o755)
        mkdir(tmp.sub("tree/sub"), 0o755)
        try writeFile(tmp.sub("tree/sub/data"), [UInt8](repeating: 7, count: 100_000))
        link(tmp.sub("tree/sub/data"), tmp.sub("tree/hard"))
        symlink(tmp.sub("keep"), tmp.sub("tree/link"))
        let u = try DirectoryWalk.usage(of: tmp.sub("tree"))
        #expect(u.inodes == 4, "tree, sub, data (once), link")
        #expect(u.bytes >= 100_000 && u.bytes < 200_000)
        try DirectoryWalk.removeTree(tmp.sub("tree"))
        var st = stat()
        #expect(lstat(tmp.sub("tree"), &st) != 0)
        #expect(lstat(tmp.sub("keep/file"), &st) == 0)
    }

    @Test("writeFileAtomically replaces the whole file")
    func atomicWrite() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try writeFileAtomically(tmp.sub("f"), "one")
        try writeFileAtomically(tmp.sub("f"), "two")
        #expect(readSmallFile(tmp.sub("f")) == "two")
    }
}
