import CrispCore
import CrispOS
import CrispTestSupport
import Glibc
import Testing
@testable import CrispStorage

/// Layer tars whose names are not UTF-8 (bytes 0xff, 0xfe): applied byte-exact, never turned
/// into U+FFFD spellings, and removable.
@Suite("Non-UTF-8 names")
struct NonUTF8NameTests {
    static let dir = RawPath(Array("d".utf8) + [0xff])
    static let file = dir.appending(RawPath(Array("f".utf8) + [0xfe]))
    static let link = RawPath(Array("s".utf8) + [0xff])
    static let linkTarget = RawPath(Array("t".utf8) + [0xff])
    static let hard = RawPath(Array("h".utf8) + [0xff])

    /// Makes a tree with raw names under `src` and tars it with GNU tar (PAX or GNU format).
    static func makeTar(_ tmp: TempDirectory, format: String) throws -> [UInt8] {
        let src = tmp.sub("src-\(format)")
        mkdir(src, 0o755)
        #expect(mkdir(rawPath(src, dir), 0o755) == 0)
        let fd = open(rawPath(src, file), O_WRONLY | O_CREAT | O_CLOEXEC, 0o640)
        #expect(fd >= 0)
        _ = write(fd, "raw", 3)
        close(fd)
        #expect(symlink(linkTarget.c, rawPath(src, link)) == 0)
        #expect(Glibc.link(rawPath(src, file), rawPath(src, hard)) == 0)
        let out = tmp.sub("layer-\(format).tar")
        let r = try runCommand(["/usr/bin/tar", "--format=\(format)", "-cf", out, "-C", src, "."])
        #expect(r.status == 0, "\(r.output)")
        return try readFile(out)
    }

    static func checkTree(_ root: String) {
        var st = stat(), hl = stat()
        #expect(lstat(rawPath(root, dir), &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR)
        #expect(lstat(rawPath(root, file), &st) == 0 && st.st_size == 3 && st.st_mode & 0o777 == 0o640)
        #expect(lstat(rawPath(root, hard), &hl) == 0 && hl.st_ino == st.st_ino, "hard link by raw name")
        var buf = [CChar](repeating: 0, count: 64)
        let n = readlink(rawPath(root, link), &buf, 63)
        #expect(n > 0 && buf[0..<n].map { UInt8(bitPattern: $0) } == linkTarget.bytes, "symlink target bytes kept")
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(fd) }
        let names = Set(((try? DirectoryWalk.entries(of: fd, subject: root)) ?? []).map(\.name))
        #expect(names == [dir, link, hard], "exactly the raw names, none respelled")
    }

    @Test("names and link targets with invalid UTF-8 are applied byte-exact",
          arguments: [("posix", WhiteoutFormat.remove), ("posix", .overlay), ("gnu", .remove)])
    func applyRawNames(format: String, whiteouts: WhiteoutFormat) throws {
        let tmp = try TempDirectory()
        defer { tmp.removeAll() }
        let root = tmp.sub("layer")
        makeDir(root)
        _ = try apply(try Self.makeTar(tmp, format: format), to: root, whiteouts: whiteouts)
        Self.checkTree(root)
    }

    @Test("whiteouts of non-UTF-8 names remove exactly those names")
    func rawWhiteouts() throws {
        let tmp = try TempDirectory()
        defer { tmp.removeAll() }
        let root = tmp.sub("layer")
        makeDir(root)
        _ = try apply(try Self.makeTar(tmp, format: "posix"), to: root)
        let src = tmp.sub("wh")
        mkdir(src, 0o755)
        #expect(mkdir(rawPath(src, Self.dir), 0o755) == 0)
        for name in [Self.dir.appending(RawPath(".wh..wh..opq")), RawPath(Array(".wh.".utf8) + Self.link.bytes)] {
            let fd = open(rawPath(src, name), O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
            #expect(fd >= 0)
            close(fd)
        }
        let r = try runCommand(["/usr/bin/tar", "--format=posix", "-cf", tmp.sub("wh.tar"), "-C", src, "."])
        #expect(r.status == 0)
        _ = try apply(try readFile(tmp.sub("wh.tar")), to: root)
        var st = stat()
        #expect(lstat(rawPath(root, Self.link), &st) != 0, "whited out")
        #expect(lstat(rawPath(root, Self.file), &st) != 0, "hidden by the opaque marker")
        #expect(lstat(rawPath(root, Self.dir), &st) == 0)
        #expect(lstat(rawPath(root, Self.hard), &st) == 0)
    }

    @Test("a layer with non-UTF-8 names is stored, mounted and removed", arguments: copyAndOverlayDrivers)
    func storeAndRemove(driver: String) async throws {
        try await withStorage(driver) { f in
            let tar = try Self.makeTar(f.tmp, format: "posix")
            let digest = diffDigest(of: tar)
            let layer = try await f.storage.applyLayer(CreateLayerOptions(id: .chainID(parent: nil, diffDigest: digest), parent: nil,
                                                                          expectedDiffDigest: digest), chunks: ChunkSequence(bytes: tar, size: 4096))
            let image = try await f.image("example.com/raw:1", top: layer)
            let c = try await f.storage.createContainer(CreateContainerOptions(name: "raw", imageID: image.id))
            Self.checkTree(try await f.storage.mountContainer(c.id))
            try await f.storage.removeContainer(c.id)
            try await f.storage.removeImage(image.id)
            #expect(try f.storage.driver.layerIDsOnDisk().isEmpty, "removal handles names a String cannot hold")
        }
    }
}
