import CrispCore
@testable import CrispImage
import CrispStorage
import CrispOCI
import CrispTestSupport
import Foundation
import RegistryTestSupport
import Testing

@Suite(.enabled(if: TestRegistry.available && FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"),
                "needs /usr/bin/docker-registry and /usr/bin/openssl"), .serialized)
struct TLSPullTests {
    @Test func httpsWithCAFromCertsDirAndRefusedWithoutIt() async throws {
        let certs = try TempDirectory("crisp-certs")
        defer { certs.remove() }
        let c = try TestCertificates(in: certs.path)
        try await withPullFixture(registry: .init(tls: (c.serverCertificate, c.serverKey)),
                                  configure: { _ in RegistriesConfiguration() }, pusherCA: c.caCertificate) { f in
            let pushed = try await f.pusher.pushImage("secure/app", tag: "1", layers: [FixtureLayer([.file("f", "tls")])])
            let ref = try ImageReference(parsing: "\(f.registry.host)/secure/app:1")
            // No CA for this registry yet: verification fails, and plain HTTP is not tried for a secure registry.
            await #expect { try await f.puller.pull(ref) } throws: { e in
                let e = e as? CrispError
                return e?.code == .unavailable && e?.message.contains("TLS") == true && e?.message.contains("http:") == false
            }
            let dir = f.tmp.sub("certs.d/\(f.registry.host)")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: c.caCertificate, toPath: dir + "/ca.crt")
            let image = try await f.puller.pull(ref)
            #expect(image.id == pushed.configDigest)
        }
    }
}

@Suite(.enabled(if: TestRegistry.available, "needs /usr/bin/docker-registry (apt docker-registry)"), .serialized)
struct Schema1PullTests {
    @Test func signedSchema1IsConverted() async throws {
        try await withPullFixture(registry: .init(schema1: true)) { f in
            let pushed = try await f.pusher.pushSchema1("old/app", tag: "v1", steps: [
                .layer(try .busybox(), createdBy: "ADD busybox"),
                .throwaway(createdBy: "ENV X=1"),
                .layer(FixtureLayer([.file("etc/motd", "schema1")]), createdBy: "RUN echo schema1 > /etc/motd"),
            ])
            let image = try await f.puller.pull(try ImageReference(parsing: "\(f.registry.host)/old/app:v1"))
            #expect(image.repoDigests == ["\(f.registry.host)/old/app@\(pushed.digest)"])
            let layers = try await f.storage.layers()
            #expect(Set(layers.compactMap(\.diffDigest)) == Set(pushed.diffIDs))
            let config = try JSONDecoder().decode(ImageConfiguration.self, from: Data(image.config))
            #expect(config.rootfs.diffIDs == pushed.diffIDs)
            #expect(config.config?.user == "nobody")
            #expect(config.history?.map { $0.emptyLayer ?? false } == [false, true, false])
            try await f.withRootfs(image) { root in
                #expect(fileContent(root + "/etc/motd") == "schema1")
                #expect(exists(root + "/bin/busybox"))
            }
        }
    }
}

@Suite(.enabled(if: TestRegistry.available && FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"),
                "needs /usr/bin/docker-registry and /usr/bin/openssl"), .serialized)
struct TokenAuthPullTests {
    @Test func bearerTokenFlowWithCachingPerScope() async throws {
        let tokens = try await TestTokenServer(user: "tok", password: "tok-pw", repository: "tok/app")
        defer { tokens.stop() }
        try await withPullFixture(registry: .init(token: (tokens.realm, tokens.service, tokens.issuer, tokens.certificate)),
                                  pusherToken: try tokens.mint(repository: "tok/app")) { f in
            let pushed = try await f.pusher.pushImage("tok/app", tag: "1", layers: [FixtureLayer([.file("f", "token")])])
            let ref = try ImageReference(parsing: "\(f.registry.host)/tok/app:1")
            await #expect { try await f.puller.pull(ref, options: PullOptions(credentials: RegistryCredentials(username: "tok", password: "bad"))) } throws: { e in
                let e = e as? CrispError
                return e?.code == .permissionDenied && e?.message.contains("bad") == false
            }
            let before = try tokens.requests()
            let good = PullOptions(credentials: RegistryCredentials(username: "tok", password: "tok-pw"))
            let image = try await f.puller.pull(ref, options: good)
            #expect(image.id == pushed.configDigest)
            _ = try await f.puller.pull(ref, options: good)
            // One token for the scope, reused by every request of both pulls.
            #expect(try tokens.requests() - before == 1)
        }
    }
}
