import CrispCore
@testable import CrispImage
import Testing

struct ImageReferenceTests {
    static let d = "sha256:" + String(repeating: "ab", count: 32)

    @Test(arguments: [
        ("busybox", "docker.io/library/busybox:latest", true),
        ("busybox:1.36", "docker.io/library/busybox:1.36", true),
        ("library/busybox", "docker.io/library/busybox:latest", true),
        ("user/app:v1", "docker.io/user/app:v1", true),
        ("docker.io/busybox", "docker.io/library/busybox:latest", false),
        ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", false),
        ("quay.io/a/b/c:tag_1.2-x", "quay.io/a/b/c:tag_1.2-x", false),
        ("localhost/app", "localhost/app:latest", false),
        ("localhost:5000/a/b:t", "localhost:5000/a/b:t", false),
        ("127.0.0.1:5000/a", "127.0.0.1:5000/a:latest", false),
        ("[::1]:5000/a:t", "[::1]:5000/a:t", false),
        ("my-registry.example.com/a__b/c.d/e--f", "my-registry.example.com/a__b/c.d/e--f:latest", false),
        ("busybox@\(d)", "docker.io/library/busybox@\(d)", true),
        ("busybox:1.36@\(d)", "docker.io/library/busybox@\(d)", true),
        ("host:5000/x:tag@\(d)", "host:5000/x@\(d)", false),
    ])
    func normalises(input: String, want: String, short: Bool) throws {
        let r = try ImageReference(parsing: input)
        #expect(r.description == want)
        #expect(r.isShortName == short)
    }

    @Test func fields() throws {
        let r = try ImageReference(parsing: "localhost:5000/a/b:t")
        #expect(r.registry == "localhost:5000")
        #expect(r.repository == "a/b")
        #expect(r.tag == "t")
        #expect(r.digest == nil)
        let p = try ImageReference(parsing: "x:1@\(Self.d)")
        #expect(p.tag == nil)
        #expect(p.digest?.description == Self.d)
    }

    @Test(arguments: [
        ("", "empty"),
        ("Busybox", "lowercase"),
        ("docker.io/Library/busybox", "lowercase"),
        ("busybox@sha256:abc", "bad digest"),
        ("busybox@md5:" + String(repeating: "a", count: 32), "bad digest"),
        ("busybox:", "bad tag"),
        ("busybox:-x", "bad tag"),
        ("busybox:" + String(repeating: "t", count: 129), "bad tag"),
        ("a//b", "path component"),
        ("a/b-", "path component"),
        ("a/_b", "path component"),
        ("a/b...c", "path component"),
        ("-bad.host/a", "registry host"),
        ("host:port/a", "registry host"),
        ("example.com/" + String(repeating: "a", count: 250), "longer than 255"),
        (":tag", "missing repository"),
    ])
    func rejects(input: String, why: String) {
        #expect {
            try ImageReference(parsing: input)
        } throws: { e in
            guard let e = e as? CrispError else { return false }
            return e.code == .invalidArgument && e.message.contains(why) && e.message.contains("invalid image reference")
        }
    }
}
