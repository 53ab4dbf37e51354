import CrispCore
@testable import CrispImage
import CrispOCI
import CrispStorage
import CrispTestSupport
import Foundation
import RegistryTestSupport
import Testing

@Suite(.enabled(if: TestRegistry.available, "needs /usr/bin/docker-registry (apt docker-registry)"), .serialized)
struct PullTests {
    @Test func pullByTagThenByDigest() async throws {
        try await withPullFixture { f in
            let pushed = try await f.pusher.pushImage("test/busybox", tag: "1.0", layers: [try .busybox()])
            let ref = try ImageReference(parsing: "\(f.registry.host)/test/busybox:1.0")
            let image = try await f.puller.pull(ref)
            #expect(image.id == pushed.configDigest)
            #expect(image.names == ["\(f.registry.host)/test/busybox:1.0"])
            #expect(image.repoDigests == ["\(f.registry.host)/test/busybox@\(pushed.manifestDigest)"])
            #expect(image.manifest == pushed.manifestBytes)
            try await f.withRootfs(image) { root in
                #expect(exists(root + "/bin/busybox"))
                #expect(fileContent(root + "/etc/passwd")?.hasPrefix("root:") == true)
            }
            let byDigest = try await f.puller.pull(try ImageReference(parsing: "\(f.registry.host)/test/busybox@\(pushed.manifestDigest)"))
            #expect(byDigest.id == image.id)
            #expect(try await f.storage.images().count == 1)
            #expect(f.leftoverDownloads().isEmpty)
        }
    }

    @Test func multiLayerWhiteoutsOpaqueDirsAndCrossLayerHardLinks() async throws {
        try await withPullFixture { f in
            let base = try FixtureLayer.busybox()
            let l1 = FixtureLayer([.dir("a"), .file("a/x", "x"), .file("a/y", "y"), .dir("o"), .file("o/old", "old"),
                                   .dir("data"), .file("data/f", "shared content")])
            let l2 = FixtureLayer([.dir("a"), .file("a/.wh.x", ""), .dir("o"), .file("o/.wh..wh..opq", ""), .file("o/new", "new"),
                                   .dir("data"), .hardlink("data/link", to: "data/f")], compression: .none)
            _ = try await f.pusher.pushImage("test/layers", tag: "v1", layers: [base, l1, l2])
            let image = try await f.puller.pull(try ImageReference(parsing: "\(f.registry.host)/test/layers:v1"))
            #expect(try await f.storage.layers().count == 3)
            try await f.withRootfs(image) { root in
                #expect(!exists(root + "/a/x"))
                #expect(fileContent(root + "/a/y") == "y")
                #expect(!exists(root + "/o/old"))
                #expect(fileContent(root + "/o/new") == "new")
                #expect(fileContent(root + "/data/link") == "shared content")
                #expect(fileContent(root + "/data/f") == "shared content")
            }
        }
    }

    @Test func indexChoosesAmd64() async throws {
        try await withPullFixture { f in
            let amd = try await f.pusher.pushImage("test/multi", tag: nil, layers: [FixtureLayer([.file("arch", "amd64")])],
                                                   platform: Platform(architecture: "amd64", os: "linux"))
            let arm = try await f.pusher.pushImage("test/multi", tag: nil, layers: [FixtureLayer([.file("arch", "arm64")])],
                                                   platform: Platform(architecture: "arm64", os: "linux", variant: "v8"))
            let indexDigest = try await f.pusher.pushIndex("test/multi", tag: "latest", images: [arm, amd])
            let image = try await f.puller.pull(try ImageReference(parsing: "\(f.registry.host)/test/multi"),
                                                options: PullOptions(platform: Platform(architecture: "amd64", os: "linux")))
            #expect(image.id == amd.configDigest)
            #expect(image.repoDigests == ["\(f.registry.host)/test/multi@\(indexDigest)"])
            try await f.withRootfs(image) { root in #expect(fileContent(root + "/arch") == "amd64") }
        }
    }

    @Test(arguments: [LayerCompression.gzip, .zstd, .none])
    func compressions(_ c: LayerCompression) async throws {
        try await withPullFixture { f in
            let pushed = try await f.pusher.pushImage("test/c", tag: "t", layers: [try .busybox(compression: c),
                                                                               FixtureLayer([.file("z", "\(c)")], compression: c)])
            let image = try await f.puller.pull(try ImageReference(parsing: "\(f.registry.host)/test/c:t"))
            #expect(image.id == pushed.configDigest)
            try await f.withRootfs(image) { root in #expect(fileContent(root + "/z") == "\(c)") }
        }
    }

    @Test func dockerSchema2Manifest() async throws {
        try await withPullFixture { f in
            let pushed = try await f.pusher.pushImage("test/docker", tag: "t", layers: [try .busybox()], oci: false)
            let image = try await f.puller.pull(try ImageReference(parsing: "\(f.registry.host)/test/docker:t"))
            #expect(image.id == pushed.configDigest)
        }
    }

    @Test func mirrorDownThenMirrorUp() async throws {
        let dead1 = try freePort(), dead2 = try freePort()
        try await withPullFixture(configure: { host in
            RegistriesConfiguration(registries: [.init(
                prefix: "mirrored.example/app", location: "127.0.0.1:\(dead1)/app", insecure: true,
                mirrors: [.init(location: "127.0.0.1:\(dead2)/app", insecure: true), .init(location: "\(host)/app", insecure: true)])])
        }) { f in
            let pushed = try await f.pusher.pushImage("app", tag: "v1", layers: [FixtureLayer([.file("hello", "mirror")])])
            let image = try await f.puller.pull(try ImageReference(parsing: "mirrored.example/app:v1"))
            #expect(image.id == pushed.configDigest)
            #expect(image.names == ["mirrored.example/app:v1"])
            #expect(image.repoDigests == ["mirrored.example/app@\(pushed.manifestDigest)"])
        }
    }

    @Test func allSourcesDownIsUnavailable() async throws {
        let dead = try freePort()
        try await withPullFixture(configure: { _ in PullFixture.registriesInsecure(["127.0.0.1:\(dead)"]) }) { f in
            await #expect { try await f.puller.pull(try ImageReference(parsing: "127.0.0.1:\(dead)/a:b")) } throws: { e in
                (e as? CrispError)?.code == .unavailable && (e as? CrispError)?.message.contains("127.0.0.1:\(dead)") == true
            }
        }
    }

    @Test func blockedRegistryIsRefused() async throws {
        try await withPullFixture(configure: { host in RegistriesConfiguration(registries: [.init(prefix: host, blocked: true)]) }) { f in
            _ = try await f.pusher.pushImage("test/blocked", tag: "t", layers: [FixtureLayer([.file("f", "x")])])
            await #expect { try await f.puller.pull(try ImageReference(parsing: "\(f.registry.host)/test/blocked:t")) } throws: { e in
                let e = e as? CrispError
                return e?.code == .permissionDenied && e?.message.contains("blocked") == true && e?.message.contains(f.registry.host) == true
            }
            #expect(try await f.storage.images().isEmpty)
        }
    }

    @Test func signaturePolicyReject() async throws {
        let policy = try SignaturePolicy.parse(Array("""
            {"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{"127.0.0.1":[{"type":"reject"}]}}}
            """.utf8), source: "policy.json")
        // The scope names the host without port, so the fixture's registry does not match it: use a rejecting default instead.
        #expect(policy.dockerScopes["127.0.0.1"] == [.reject])
        let rejectAll = try SignaturePolicy.parse(Array(#"{"default":[{"type":"reject"}]}"#.utf8), source: "policy.json")
        try await withPullFixture(policy: rejectAll) { f in
            await #expect { try await f.puller.pull(try ImageReference(parsing: "\(f.registry.host)/x:y")) } throws: { e in
                (e as? CrispError)?.code == .permissionDenied && (e as? CrispError)?.message.contains("signature policy") == true
            }
        }
    }

    @Test func missingTagIsNotFound() async throws {
        try await withPullFixture { f in
            _ = try await f.pusher.pushImage("test/nf", tag: "a", layers: [FixtureLayer([.file("f", "x")])])
            await #expect { try await f.puller.pull(try ImageReference(parsing: "\(f.registry.host)/test/nf:b")) } throws: { e in
                (e as? CrispError)?.code == .notFound
            }
        }
    }
}

@Suite(.enabled(if: TestRegistry.available, "needs /usr/bin/docker-registry (apt docker-registry)"), .serialized)
struct PullFailureTests {
    @Test func basicAuthRightAndWrongCredentials() async throws {
        let user = "crisp", password = "s3cret-pw"
        try await withPullFixture(registry: .init(basicAuth: (user, password))) { f in
            let pushed = try await f.pusher.pushImage("private/app", tag: "1", layers: [FixtureLayer([.file("f", "private")])])
            let ref = try ImageReference(parsing: "\(f.registry.host)/private/app:1")
            await #expect { try await f.puller.pull(ref) } throws: { e in
                let e = e as? CrispError
                return e?.code == .permissionDenied && e?.message.contains("no credentials") == true
            }
            await #expect {
                try await f.puller.pull(ref, options: PullOptions(credentials: RegistryCredentials(username: user, password: "wrong-pw")))
            } throws: { e in
                let e = e as? CrispError
                return e?.code == .permissionDenied && e?.description.contains("wrong-pw") == false
            }
            #expect(try await f.storage.images().isEmpty)
            let image = try await f.puller.pull(ref, options: PullOptions(credentials: RegistryCredentials(username: user, password: password)))
            #expect(image.id == pushed.configDigest)
        }
    }

    @Test func authFileCredentials() async throws {
        let user = "crisp", password = "file-pw"
        let tmp = try TempDirectory("crisp-auth")
        defer { tmp.remove() }
        try await withPullFixture(registry: .init(basicAuth: (user, password)), authFile: tmp.sub("auth.json")) { f in
            let auth = Data("\(user):\(password)".utf8).base64EncodedString()
            try #"{"auths":{"\#(f.registry.host)":{"auth":"\#(auth)"}}}"#.write(toFile: tmp.sub("auth.json"), atomically: true, encoding: .utf8)
            let pushed = try await f.pusher.pushImage("private/app", tag: "1", layers: [FixtureLayer([.file("f", "private")])])
            let image = try await f.puller.pull(try ImageReference(parsing: "\(f.registry.host)/private/app:1"))
            #expect(image.id == pushed.configDigest)
        }
    }

    @Test(arguments: [0, 1])
    func corruptedBlobFailsAndStoresNothing(layerIndex: Int) async throws {
        try await withPullFixture(configure: { _ in RegistriesConfiguration() }) { f in
            let pushed = try await f.pusher.pushImage("test/corrupt", tag: "t",
                                                      layers: [try .busybox(), FixtureLayer([.file("second", "2")])])
            let proxy = try await TestProxy(upstream: f.registry.host, corrupt: pushed.layers[layerIndex].digest)
            defer { proxy.stop() }
            await f.puller.updateRegistries(PullFixture.registriesInsecure([proxy.host]))
            await #expect { try await f.puller.pull(try ImageReference(parsing: "\(proxy.host)/test/corrupt:t")) } throws: { e in
                let e = e as? CrispError
                return e?.message.contains("\(pushed.layers[layerIndex].digest)") == true
            }
            #expect(try await f.storage.images().isEmpty)
            #expect(try await f.storage.layers().isEmpty)
            #expect(f.leftoverDownloads().isEmpty)
        }
    }

    @Test func concurrentPullsDownloadEachBlobOnce() async throws {
        try await withPullFixture(configure: { _ in RegistriesConfiguration() }) { f in
            let pushed = try await f.pusher.pushImage("test/conc", tag: "t", layers: [
                try .busybox(), FixtureLayer([.file("a", "1")]), FixtureLayer([.file("b", "2")]), FixtureLayer([.file("c", "3")]),
            ])
            let proxy = try await TestProxy(upstream: f.registry.host)
            defer { proxy.stop() }
            f.puller.updateRegistries(PullFixture.registriesInsecure([proxy.host]))
            let ref = try ImageReference(parsing: "\(proxy.host)/test/conc:t")
            let ids = try await withThrowingTaskGroup(of: CrispCore.Digest.self) { g in
                for _ in 0..<4 { g.addTask { try await f.puller.pull(ref).id } }
                return try await g.reduce(into: []) { $0.append($1) }
            }
            #expect(ids == Array(repeating: pushed.configDigest, count: 4))
            let counts = try await proxy.counts()
            for l in pushed.layers {
                #expect(counts["GET /v2/test/conc/blobs/\(l.digest)"] == 1, "blob \(l.digest)")
            }
            #expect(counts["GET /v2/test/conc/blobs/\(pushed.configDigest)"] == 1)
            #expect(try await f.storage.layers().count == 4)
        }
    }
}

@Suite(.enabled(if: TestRegistry.available, "needs /usr/bin/docker-registry (apt docker-registry)"), .serialized)
struct PullRetryTests {
    @Test(arguments: [0, 1])
    func serverErrorIsRetried(layerIndex: Int) async throws {
        try await withPullFixture(configure: { _ in RegistriesConfiguration() }) { f in
            let pushed = try await f.pusher.pushImage("test/retry", tag: "t", layers: [FixtureLayer([.file("a", "1")]), FixtureLayer([.file("b", "2")])])
            let blob = pushed.layers[layerIndex].digest
            let proxy = try await TestProxy(upstream: f.registry.host, failOnce: blob)
            defer { proxy.stop() }
            f.puller.updateRegistries(PullFixture.registriesInsecure([proxy.host]))
            let image = try await f.puller.pull(try ImageReference(parsing: "\(proxy.host)/test/retry:t"))
            #expect(image.id == pushed.configDigest)
            #expect(try await proxy.counts()["GET /v2/test/retry/blobs/\(blob)"] == 2)
        }
    }
}
