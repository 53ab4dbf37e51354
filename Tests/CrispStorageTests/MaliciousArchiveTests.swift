import CrispCore
import CrispOS
import CrispTestSupport
import Glibc
import Testing
@testable import CrispStorage

/// Each archive points its escape at a canary directory the test owns, next to the layer
/// directory. The apply may fail or succeed, but the canary must be exactly as it was and
/// nothing may appear beside the layer.
@Suite("Malicious archives")
struct MaliciousArchiveTests {
    struct Fixture {
        let tmp: TempDirectory
        var root: String { tmp.sub("layer") }
        var canary: String { tmp.sub("canary") }

        init() throws {
            tmp = try TempDirectory("crisp-evil")
            makeDir(tmp.sub("layer"))
            makeDir(tmp.sub("canary"))
            try writeFile(tmp.sub("canary/secret"), Array("original".utf8))
        }

        /// The canary holds only the untouched secret, and the temp dir only layer + canary.
        func expectUntouched(_ comment: Comment) {
            #expect(listing(canary) == ["secret"], comment)
            #expect(fileText(canary + "/secret") == "original", comment)
            #expect(lstatOf(canary + "/secret")?.st_nlink == 1, comment)
            #expect(listing(tmp.path) == ["canary", "layer"], comment)
        }
    }

    static func tar(_ entries: [TarEntry]) -> [UInt8] { (try? TarBuilder.build(entries)) ?? [] }

    static func raw(_ build: (inout RawTar) -> Void) -> [UInt8] {
        var t = RawTar()
        build(&t)
        t.end()
        return t.bytes
    }

    /// (name, archive builder given the canary's absolute path).
    static let escapes: [(String, @Sendable (String) -> [UInt8])] = [
        ("dot-dot file", { _ in raw { $0.add("../canary/evil", .file, data: Array("x".utf8)) } }),
        ("dot-dot overwrite", { _ in raw { $0.add("../../../../canary/secret", .file, data: Array("pwned".utf8)) } }),
        ("absolute path", { c in raw { $0.add(c + "/evil", .file, data: Array("x".utf8)) } }),
        ("symlink to canary then file through it", { c in tar([.symlink("link", to: c), .file("link/evil", "x")]) }),
        ("relative symlink to canary then overwrite", { _ in tar([.symlink("link", to: "../canary"), .file("link/secret", "pwned")]) }),
        ("symlinked parent directory", { _ in tar([.dir("a"), .symlink("a/b", to: "../../canary"), .file("a/b/c/evil", "x"), .file("a/b/secret", "pwned")]) }),
        ("symlink to canary file then write to it", { c in tar([.symlink("s", to: c + "/secret"), .file("s", "pwned")]) }),
        ("hard link to canary file then write", { _ in raw { $0.add("hl", .hardlink, link: "../canary/secret"); $0.add("hl", .file, data: Array("pwned".utf8)) } }),
        ("absolute hard link to canary file", { c in raw { $0.add("hl", .hardlink, link: c + "/secret") } }),
        ("hard link through a symlink", { _ in raw { $0.add("s", .symlink, link: "../canary"); $0.add("hl", .hardlink, link: "s/secret"); $0.add("hl", .file, data: Array("pwned".utf8)) } }),
        ("device node through a symlink", { c in tar([.symlink("d", to: c), TarEntry("d/null", .characterDevice(major: 1, minor: 3))]) }),
        ("fifo through a dot-dot symlink", { _ in tar([.symlink("d", to: "../../.."), TarEntry("d/canary/fifo", .fifo)]) }),
        ("whiteout through a symlink", { _ in tar([.symlink("d", to: "../canary"), .file("d/.wh.secret", "")]) }),
        ("opaque directory through a symlink", { _ in tar([.symlink("d", to: "../canary"), .file("d/.wh..wh..opq", "")]) }),
        ("directory named dot-dot", { _ in raw { $0.add("..", .dir); $0.add("../evil", .file, data: [1]) } }),
    ]

    @Test("escapes stay inside the layer", arguments: 0..<escapes.count)
    func escape(index: Int) throws {
        let f = try Fixture()
        defer { f.tmp.remove() }
        let (name, build) = Self.escapes[index]
        for format in [WhiteoutFormat.remove, .overlay] {
            do { _ = try apply(build(f.canary), to: f.root, whiteouts: format) } catch { print("\(name) (\(format)) refused: \(error)") }
            f.expectUntouched("\(name) (\(format))")
        }
    }

    @Test("a truncated archive fails cleanly")
    func truncated() throws {
        let f = try Fixture()
        defer { f.tmp.remove() }
        let full = try TarBuilder.build([TarEntry("f", .file(.pattern(size: 100_000, seed: 3)))])
        #expect(throws: CrispError.self) { try apply(Array(full[0..<50_000]), to: f.root) }
        f.expectUntouched("truncated")
    }

    @Test("a bad header checksum fails cleanly")
    func badChecksum() throws {
        let f = try Fixture()
        defer { f.tmp.remove() }
        let bytes = Self.raw { $0.add("ok", .file, data: [1]); $0.add("bad", .file, data: [2], corruptChecksum: true) }
        #expect(throws: CrispError.self) { try apply(bytes, to: f.root) }
        #expect(lstatOf(f.root + "/bad") == nil)
        f.expectUntouched("checksum")
    }

    @Test("a 10 GiB size header over a few bytes of data fails without filling the disk")
    func giantSizeHeader() throws {
        let f = try Fixture()
        defer { f.tmp.remove() }
        let bytes = Self.raw { $0.add("bomb", .file, data: [UInt8](repeating: 1, count: 4096), declaredSize: 10 << 30) }
        #expect(throws: CrispError.self) { try apply(bytes, to: f.root) }
        let usage = try DirectoryWalk.usage(of: f.root)
        #expect(usage.bytes < 1 << 20)
        f.expectUntouched("giant")
    }

    @Test("a 10 GiB sparse-bomb entry writes holes, not 10 GiB")
    func sparseBomb() throws {
        let f = try Fixture()
        defer { f.tmp.remove() }
        let tenGiB = 10 << 30
        let bytes = Self.raw {
            $0.add("sparse", .gnuSparse, data: [UInt8](repeating: 9, count: 512), declaredSize: 512,
                   sparse: [(offset: tenGiB - 512, length: 512)], realSize: tenGiB)
        }
        do {
            _ = try apply(bytes, to: f.root)
            let st = lstatOf(f.root + "/sparse")
            #expect(st?.st_size == tenGiB)
            #expect(Int(st?.st_blocks ?? 0) * 512 < 1 << 20, "holes stay holes")
        } catch {
            // Refusing the entry is fine as well.
            print("sparse bomb refused: \(error)")
        }
        #expect(try DirectoryWalk.usage(of: f.root).bytes < 1 << 20)
        f.expectUntouched("sparse")
    }

    @Test("a giant pax extended header fails cleanly")
    func giantPaxHeader() throws {
        let f = try Fixture()
        defer { f.tmp.remove() }
        var t = RawTar()
        t.bytes_append_pax(declared: 8 << 30)
        #expect(throws: CrispError.self) { try apply(t.bytes, to: f.root) }
        f.expectUntouched("pax")
    }

    @Test("garbage is not a tar")
    func garbage() throws {
        let f = try Fixture()
        defer { f.tmp.remove() }
        #expect(throws: CrispError.self) { try apply((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) }, to: f.root) }
        f.expectUntouched("garbage")
    }
}

extension RawTar {
    /// A pax 'x' header that claims `declared` bytes of records, followed by a few.
    mutating func bytes_append_pax(declared: Int) {
        add("PaxHeaders/x", .file, data: Array("30 path=aaaaaaaaaaaaaaaaaaaaa\n".utf8), declaredSize: declared)
        // Re-type the header to 'x' and fix its checksum.
        retypeLastHeader(to: 0x78)
    }
}
