import CrispCore
@testable import CrispImage
import Foundation
import Testing

struct RegistriesConfigurationTests {
    static let conf = """
        unqualified-search-registries = ["registry.example.com", "docker.io"]

        [[registry]]
        prefix = "docker.io"
        location = "docker.io"
        [[registry.mirror]]
        location = "mirror-a.example.com:5000"
        insecure = true
        [[registry.mirror]]
        location = "mirror-b.example.com/hub"
        pull-from-mirror = "digest-only"
        [[registry.mirror]]
        location = "mirror-c.example.com"
        pull-from-mirror = "tag-only"

        [[registry]]
        prefix = "example.com/foo"
        location = "internal.example.com/bar"
        insecure = true

        [[registry]]
        location = "blocked.example.com"
        blocked = true

        [[registry]]
        prefix = "*.wild.example.com"
        insecure = true
        """

    static let digest = "sha256:" + String(repeating: "cd", count: 32)

    @Test func parsesV2() throws {
        let c = try RegistriesConfiguration.parse(Self.conf, source: "test.conf")
        #expect(c.unqualifiedSearchRegistries == ["registry.example.com", "docker.io"])
        #expect(c.registries.count == 4)
        #expect(c.registries[0].mirrors.map(\.pullFromMirror) == [.all, .digestOnly, .tagOnly])
        #expect(c.registries[0].mirrors[0].insecure)
        #expect(c.registries[2].prefix == "blocked.example.com")
        #expect(c.registries[2].blocked)
    }

    @Test(arguments: [
        // reference, expected sources (mirror marker "m:"), in order
        ("docker.io/library/busybox:1", ["m:mirror-a.example.com:5000/library/busybox:1", "m:mirror-c.example.com/library/busybox:1",
                                          "docker.io/library/busybox:1"]),
        ("busybox@\(digest)", ["m:mirror-a.example.com:5000/library/busybox@\(digest)",
                               "m:mirror-b.example.com/hub/library/busybox@\(digest)", "docker.io/library/busybox@\(digest)"]),
        ("example.com/foo/app:2", ["internal.example.com/bar/app:2"]),
        ("example.com/foobar/app:2", ["example.com/foobar/app:2"]),
        ("quay.io/x/y", ["quay.io/x/y:latest"]),
        ("a.wild.example.com/x", ["a.wild.example.com/x:latest"]),
    ])
    func resolvesSources(input: String, want: [String]) throws {
        let c = try RegistriesConfiguration.parse(Self.conf, source: "test.conf")
        let got = try c.sources(for: try ImageReference(parsing: input)).map { ($0.isMirror ? "m:" : "") + $0.reference.description }
        #expect(got == want)
    }

    @Test func insecureFlags() throws {
        let c = try RegistriesConfiguration.parse(Self.conf, source: "test.conf")
        #expect(try c.sources(for: ImageReference(parsing: "example.com/foo/app")).map(\.insecure) == [true])
        #expect(try c.sources(for: ImageReference(parsing: "x.wild.example.com/a")).map(\.insecure) == [true])
        #expect(try c.sources(for: ImageReference(parsing: "busybox")).map(\.insecure) == [true, false, false])
    }

    @Test func blockedNamesRule() throws {
        let c = try RegistriesConfiguration.parse(Self.conf, source: "test.conf")
        #expect {
            try c.sources(for: ImageReference(parsing: "blocked.example.com/a/b:1"))
        } throws: { e in
            let e = e as? CrispError
            return e?.code == .permissionDenied && e?.message.contains("prefix \"blocked.example.com\"") == true
        }
    }

    @Test func shortNameCandidates() throws {
        let c = try RegistriesConfiguration.parse(Self.conf, source: "test.conf")
        #expect(c.candidates(for: try ImageReference(parsing: "busybox:1")).map(\.description)
                == ["registry.example.com/busybox:1", "docker.io/library/busybox:1"])
        #expect(c.candidates(for: try ImageReference(parsing: "quay.io/a:1")).map(\.description) == ["quay.io/a:1"])
        #expect(RegistriesConfiguration().candidates(for: try ImageReference(parsing: "busybox")).map(\.description)
                == ["docker.io/library/busybox:latest"])
    }

    @Test(arguments: [
        ("[registries.search]\nregistries = [\"a\"]", "v1 format"),
        ("[[registry]]\ninsecure = true", "neither prefix nor location"),
        ("[[registry]]\nprefix = \"a*b.com\"", "wildcard"),
        ("[[registry]]\nprefix = \"*.a.com/x\"", "wildcard"),
        ("[[registry]]\nprefix = \"a.com\"\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"sometimes\"", "test.conf"),
        ("unqualified-search-registries = [", "test.conf"),
    ])
    func rejects(text: String, why: String) {
        #expect {
            try RegistriesConfiguration.parse(text, source: "test.conf")
        } throws: { e in
            let e = e as? CrispError
            return e?.code == .invalidArgument && e?.message.contains(why) == true && e?.message.contains("test.conf") == true
        }
    }

    @Test func dropInsOverride() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("regconf-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/registries.conf.d", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "unqualified-search-registries = [\"a.io\"]\n[[registry]]\nprefix = \"x.io\"\ninsecure = true\n"
            .write(toFile: dir + "/registries.conf", atomically: true, encoding: .utf8)
        try "[[registry]]\nprefix = \"x.io\"\nblocked = true\n".write(toFile: dir + "/registries.conf.d/10-x.conf", atomically: true, encoding: .utf8)
        try "unqualified-search-registries = [\"b.io\"]\n".write(toFile: dir + "/registries.conf.d/20-s.conf", atomically: true, encoding: .utf8)
        let c = try RegistriesConfiguration.load(path: dir + "/registries.conf")
        #expect(c.unqualifiedSearchRegistries == ["b.io"])
        #expect(c.registries.count == 1)
        #expect(c.registries[0].blocked)
        #expect(!c.registries[0].insecure)
        #expect(try RegistriesConfiguration.load(path: dir + "/missing/registries.conf") == RegistriesConfiguration())
    }
}
