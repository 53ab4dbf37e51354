import CrispCore
@testable import CrispImage
@testable import CrispOCI
import Foundation
import Testing

struct ManifestTests {
    static func digest(_ c: Character) -> CrispCore.Digest { try! CrispCore.Digest(parsing: "sha256:" + String(repeating: c, count: 64)) }

    static let index = ImageIndex(manifests: [
        Descriptor(mediaType: MediaType.ociManifest, digest: digest("1"), size: 1, platform: Platform(architecture: "arm64", os: "linux", variant: "v8")),
        Descriptor(mediaType: MediaType.ociManifest, digest: digest("2"), size: 1, platform: Platform(architecture: "amd64", os: "linux")),
        Descriptor(mediaType: MediaType.ociManifest, digest: digest("3"), size: 1, platform: Platform(architecture: "arm", os: "linux", variant: "v6")),
        Descriptor(mediaType: MediaType.ociManifest, digest: digest("4"), size: 1, platform: Platform(architecture: "arm", os: "linux", variant: "v7")),
        Descriptor(mediaType: MediaType.ociManifest, digest: digest("5"), size: 1, platform: Platform(architecture: "unknown", os: "unknown")),
    ])

    @Test(arguments: [
        (Platform(architecture: "amd64", os: "linux"), "2"),
        (Platform(architecture: "x86_64", os: "linux"), "2"),
        (Platform(architecture: "arm64", os: "linux"), "1"),
        (Platform(architecture: "aarch64", os: "linux", variant: "v8"), "1"),
        (Platform(architecture: "arm", os: "linux", variant: "v7"), "4"),
    ])
    func selectsPlatform(_ p: Platform, want: String) throws {
        #expect(try Self.index.select(platform: p).digest == Self.digest(Character(want)))
    }

    @Test func noMatchingPlatformNamesWhatIsThere() {
        #expect {
            try Self.index.select(platform: Platform(architecture: "s390x", os: "linux"))
        } throws: { e in
            let e = e as? CrispError
            return e?.code == .notFound && e?.message.contains("linux/amd64") == true && e?.message.contains("linux/s390x") == true
        }
    }

    @Test func parsesByContentTypeAndByShape() throws {
        let m = ImageManifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: Self.digest("a"), size: 2),
                              layers: [Descriptor(mediaType: MediaType.ociLayerZstd, digest: Self.digest("b"), size: 3)])
        let bytes = [UInt8](try JSONEncoder().encode(m))
        #expect(try ParsedManifest(bytes: bytes, contentType: MediaType.ociManifest) == .image(m))
        #expect(try ParsedManifest(bytes: bytes, contentType: "application/octet-stream") == .image(m))
        let ib = [UInt8](try JSONEncoder().encode(Self.index))
        #expect(try ParsedManifest(bytes: ib, contentType: "text/plain; charset=utf-8") == .index(Self.index))
        #expect(try ParsedManifest(bytes: ib, contentType: MediaType.dockerManifestList) == .index(Self.index))
    }

    @Test(arguments: [
        ("not json", "not a JSON object"),
        (#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#, "missing field \"config\""),
        (#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:abc","size":1},"layers":[]}"#, "digest"),
        (#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:\#(String(repeating: "a", count: 64))","size":1},"layers":[{"mediaType":"application/x-weird","digest":"sha256:\#(String(repeating: "a", count: 64))","size":1}]}"#, "unsupported media type"),
    ])
    func rejectsMalformed(text: String, why: String) {
        #expect {
            try ParsedManifest(bytes: Array(text.utf8), contentType: nil)
        } throws: { e in
            let e = e as? CrispError
            return e?.code == .invalidArgument && e?.message.contains(why) == true
        }
    }

    @Test func layerCompressionByMediaTypeAndMagic() {
        #expect(LayerCompression(layerMediaType: MediaType.dockerLayerGzip) == .gzip)
        #expect(LayerCompression(layerMediaType: MediaType.ociLayerZstd) == .zstd)
        #expect(LayerCompression(layerMediaType: MediaType.ociLayer) == LayerCompression.none)
        #expect(LayerCompression(layerMediaType: MediaType.ociConfig) == nil)
        #expect(LayerCompression(magic: [0x1f, 0x8b, 8, 0]) == .gzip)
        #expect(LayerCompression(magic: [0x28, 0xb5, 0x2f, 0xfd]) == .zstd)
        #expect(LayerCompression(magic: Array("bin/".utf8)) == LayerCompression.none)
    }

    static func v1(_ json: String) -> Schema1Manifest.V1History { .init(v1Compatibility: json) }

    @Test func schema1Conversion() throws {
        let m = Schema1Manifest(schemaVersion: 1, name: "a/b", tag: "t", architecture: "amd64",
                                fsLayers: [.init(blobSum: Self.digest("c")), .init(blobSum: Self.digest("e")), .init(blobSum: Self.digest("d"))],
                                history: [
                                    Self.v1(#"{"id":"3","created":"2020-01-03T00:00:00Z","architecture":"amd64","os":"linux","config":{"User":"nobody","Cmd":["sh"]},"container_config":{"Cmd":["/bin/sh","-c","touch c"]}}"#),
                                    Self.v1(#"{"id":"2","throwaway":true,"container_config":{"Cmd":["ENV","X=1"]}}"#),
                                    Self.v1(#"{"id":"1","created":"2020-01-01T00:00:00Z"}"#),
                                ])
        let layers = try m.convertedLayers()
        #expect(layers.map(\.blobSum) == [Self.digest("d"), Self.digest("e"), Self.digest("c")])
        #expect(layers.map(\.empty) == [false, true, false])
        let config = try m.convertedConfig(diffIDs: [Self.digest("1"), Self.digest("2")])
        #expect(config.rootfs.diffIDs == [Self.digest("1"), Self.digest("2")])
        #expect(config.config?.user == "nobody")
        #expect(config.history?.count == 3)
        #expect(config.history?[1].emptyLayer == true)
        #expect(config.history?[2].createdBy == "/bin/sh -c touch c")
        #expect(config.created == "2020-01-03T00:00:00Z")
        #expect(throws: CrispError.self) { try m.convertedConfig(diffIDs: [Self.digest("1")]) }
    }

    @Test func schema1SignedPayload() throws {
        let body = #"{"schemaVersion":1,"name":"x","fsLayers":[],"history":[]"#
        let tail = "\n}"
        func b64url(_ s: String) -> String {
            Data(s.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        let protected = b64url(#"{"formatLength":\#(body.utf8.count),"formatTail":"\#(b64url(tail))","time":"2020-01-01T00:00:00Z"}"#)
        let signed = body + #","signatures":[{"header":{"alg":"ES256"},"signature":"xx","protected":"\#(protected)"}]}"#
        #expect(try Schema1Manifest.payload(of: Array(signed.utf8)) == Array((body + tail).utf8))
        #expect(try Schema1Manifest.payload(of: Array((body + tail).utf8)) == Array((body + tail).utf8))
    }
}

struct PolicyAndAuthTests {
    @Test func policyScopes() throws {
        let p = try SignaturePolicy.parse(Array("""
            {"default":[{"type":"reject"}],
             "transports":{"docker":{
                "docker.io/library/busybox":[{"type":"insecureAcceptAnything"}],
                "quay.io":[{"type":"insecureAcceptAnything"}],
                "quay.io/bad":[{"type":"reject"}],
                "*.example.com":[{"type":"insecureAcceptAnything"}]},
              "docker-daemon":{"":[{"type":"insecureAcceptAnything"}]}}}
            """.utf8), source: "p.json")
        try p.check(ImageReference(parsing: "busybox"))
        try p.check(ImageReference(parsing: "quay.io/good/app:1"))
        try p.check(ImageReference(parsing: "r.example.com/app"))
        for bad in ["quay.io/bad/app", "alpine", "example.com/app"] {
            #expect { try p.check(ImageReference(parsing: bad)) } throws: { e in (e as? CrispError)?.code == .permissionDenied }
        }
    }

    @Test(arguments: ["signedBy", "sigstoreSigned", "signedBaseLayer"])
    func unsupportedPolicyTypes(type: String) {
        let text = #"{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{"quay.io":[{"type":"\#(type)","keyType":"GPGKeys","keyPath":"/k"}]}}}"#
        #expect { try SignaturePolicy.parse(Array(text.utf8), source: "p.json") } throws: { e in
            let e = e as? CrispError
            return e?.code == .unimplemented && e?.message.contains(type) == true && e?.message.contains("quay.io") == true
        }
    }

    @Test func authFileLookup() throws {
        func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }
        let f = try AuthFile.parse(Data("""
            {"auths":{"https://index.docker.io/v1/":{"auth":"\(b64("hub:pw1"))"},
                      "quay.io":{"auth":"\(b64("q:pw2"))"},
                      "quay.io/team":{"auth":"\(b64("team:pw3"))"},
                      "r.io":{"identitytoken":"refresh"}}}
            """.utf8), source: "auth.json")
        #expect(f.credentials(for: try ImageReference(parsing: "busybox"))?.username == "hub")
        #expect(f.credentials(for: try ImageReference(parsing: "quay.io/team/app"))?.username == "team")
        #expect(f.credentials(for: try ImageReference(parsing: "quay.io/other/app"))?.password == "pw2")
        #expect(f.credentials(for: try ImageReference(parsing: "r.io/a"))?.identityToken == "refresh")
        #expect(f.credentials(for: try ImageReference(parsing: "ghcr.io/a")) == nil)
        let c = try #require(f.credentials(for: try ImageReference(parsing: "quay.io/team/app")))
        #expect(!c.description.contains("pw3"))
        #expect { try AuthFile.parse(Data(#"{"auths":{"x":{"auth":"!!"}}}"#.utf8), source: "a.json") } throws: { e in
            let e = e as? CrispError
            return e?.message.contains("a.json") == true && e?.message.contains("!!") == false
        }
    }

    @Test func criAuthConfig() throws {
        let c = try #require(try RegistryCredentials(username: "", password: "", auth: Data("u:p:q".utf8).base64EncodedString(),
                                                     identityToken: "", registryToken: ""))
        #expect(c.username == "u")
        #expect(c.password == "p:q")
        #expect(try RegistryCredentials(username: "", password: "", auth: "", identityToken: "", registryToken: "") == nil)
    }

    @Test(arguments: [
        (#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a:pull""#,
         Challenge.bearer(realm: "https://auth.example.com/token", service: "registry.example.com")),
        (#"Basic realm="Registry Realm""#, .basic),
        (#"bearer realm=https://a/t"#, .bearer(realm: "https://a/t", service: nil)),
    ])
    func challenges(header: String, want: Challenge) {
        #expect(Challenge.parse(header) == want)
    }
}
