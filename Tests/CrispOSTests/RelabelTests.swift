import CrispOS
import Foundation
import Glibc
import Testing

/// The volume relabel walk, with a user xattr standing in for security.selinux (SELinux is off
/// here and its attribute cannot be set without a policy).
@Suite struct RelabelTests {
    static func attribute(_ path: String) -> String? {
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = crispLGetXattr(path, "user.crisp.test", &buffer)
        return n < 0 ? nil : String(decoding: buffer.prefix(n), as: UTF8.self)
    }

    @Test func labelsTheTreeAndNotWhereLinksPoint() throws {
        let base = NSTemporaryDirectory() + "crisp-relabel-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: base + "/vol/sub/deeper", withIntermediateDirectories: true)
        try "x".write(toFile: base + "/vol/file", atomically: false, encoding: .utf8)
        try "y".write(toFile: base + "/vol/sub/deeper/file", atomically: false, encoding: .utf8)
        try "z".write(toFile: base + "/outside", atomically: false, encoding: .utf8)
        try fm.createSymbolicLink(atPath: base + "/vol/link", withDestinationPath: base + "/outside")
        try fm.createSymbolicLink(atPath: base + "/vol/dirlink", withDestinationPath: base)

        try Relabel.tree(base + "/vol", attribute: "user.crisp.test", value: "label_t")
        for p in ["/vol", "/vol/file", "/vol/sub", "/vol/sub/deeper", "/vol/sub/deeper/file"] {
            #expect(Self.attribute(base + p) == "label_t", "\(p)")
        }
        #expect(Self.attribute(base + "/outside") == nil)
        #expect(Self.attribute(base) == nil)
        #expect(throws: (any Error).self) { try Relabel.tree(base + "/absent", attribute: "user.crisp.test", value: "x") }
    }
}
