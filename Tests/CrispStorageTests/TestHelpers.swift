import CrispCore
import CrispOS
import CrispTestSupport
import Glibc
import Testing
@testable import CrispStorage

func lstatOf(_ path: String) -> stat? {
    var st = stat()
    return lstat(path, &st) == 0 ? st : nil
}

func fileText(_ path: String) -> String? {
    (try? readFile(path)).map { String(decoding: $0, as: UTF8.self) }
}

func xattr(_ path: String, _ name: String) -> [UInt8]? {
    var buf = [UInt8](repeating: 0, count: 4096)
    let n = crispLGetXattr(path, name, &buf)
    return n < 0 ? nil : Array(buf[0..<n])
}

/// Names in a directory, sorted; nil when it cannot be read.
func listing(_ path: String) -> [String]? {
    guard let d = opendir(path) else { return nil }
    defer { closedir(d) }
    var names: [String] = []
    while let e = readdir(d) {
        let n = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
        if n != "." && n != ".." { names.append(n) }
    }
    return names.sorted()
}

/// Applies tar bytes to `root` from an in-memory fd (memfd), the way a downloaded layer arrives.
func apply(_ tar: [UInt8], to root: String, whiteouts: WhiteoutFormat = .remove, lowers: [String] = [],
           expect: CrispCore.Digest? = nil) throws -> ApplyResult {
    let path = "/tmp/crisp-apply-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tar"
    try writeFile(path, tar)
    defer { unlink(path) }
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    defer { close(fd) }
    return try LayerApplier.apply(fd: fd, to: ApplyTarget(root: root, whiteouts: whiteouts, lowerRoots: lowers, expectedDigest: expect))
}

func makeDir(_ path: String, _ mode: mode_t = 0o755) { mkdir(path, mode) }

extension TempDirectory {
    /// `remove()` (which unmounts first), then removal by byte names: CrispOS's walk lists names
    /// as String and cannot delete names that are not UTF-8.
    func removeAll() {
        remove()
        try? DirectoryWalk.removeTree(path)
    }
}
