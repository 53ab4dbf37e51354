import CrispCore
import CrispTestSupport
import Glibc
import Testing
@testable import CrispOS

@Suite("DirectoryWalk")
struct DirectoryWalkTests {
    @Test("names that are not UTF-8 are listed as their bytes, counted by usage and removed by removeTree")
    func nonUTF8Names() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let tree = tmp.sub("tree")
        #expect(mkdir(tree, 0o755) == 0)
        let dir = RawPath(Array("d".utf8) + [0xff])
        // Two names that would both read as "f\u{FFFD}" if decoded as String.
        let files = [RawPath(Array("f".utf8) + [0xfe]), RawPath(Array("f".utf8) + [0xfd])]
        let base = RawPath(tree)
        #expect(mkdir(base.appending(dir).c, 0o755) == 0)
        for f in files {
            let fd = open(base.appending(dir).appending(f).c, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
            #expect(fd >= 0)
            _ = write(fd, [UInt8](repeating: 1, count: 8192), 8192)
            close(fd)
        }
        let top = try DirectoryWalk.entries(atPath: tree)
        #expect(top.map(\.name) == [dir])
        let dfd = open(base.appending(dir).c, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(dfd) }
        #expect(Set(try DirectoryWalk.entries(of: dfd, subject: "d").map(\.name)) == Set(files))
        let u = try DirectoryWalk.usage(of: tree)
        #expect(u.inodes == 4, "tree, d\\xff and both files")
        #expect(u.bytes >= 2 * 8192)
        try DirectoryWalk.removeTree(tree)
        var st = stat()
        #expect(lstat(tree, &st) != 0)
    }
}
