public import CrispCore
import CrispOCI
import CrispTestSupport
import Crypto
import Foundation

/// Pushes Docker v2 schema 1 manifests, signed the way libtrust signs them (ES256 JWS with the
/// key in the header, "pretty" signature appended to the payload), which distribution 2.8
/// requires when `compatibility.schema1.enabled` is on.
extension RegistryPusher {
    /// A schema 1 layer: its content, or a throwaway (empty, history-only) step.
    public enum Schema1Step: Sendable {
        case layer(FixtureLayer, createdBy: String)
        case throwaway(createdBy: String)
    }

    /// Pushes the blobs and a signed schema 1 manifest with `steps` (oldest first). Returns the
    /// manifest digest (of the payload) and the diff ids of the non-empty layers.
    public func pushSchema1(_ repo: String, tag: String, steps: [Schema1Step], user: String = "nobody")
        async throws -> (digest: CrispCore.Digest, diffIDs: [CrispCore.Digest]) {
        let emptyTar = try filter("/bin/gzip", ["-c", "-n"], try TarBuilder.build([]))
        var fsLayers: [String] = []
        var history: [String] = []
        var diffIDs: [CrispCore.Digest] = []
        var parent: String?
        for (i, step) in steps.enumerated() {
            let blob: [UInt8]
            let createdBy: String
            var throwaway = false
            switch step {
            case .layer(let l, let c):
                let tar = try TarBuilder.build(l.entries)
                diffIDs.append(diffDigest(of: tar))
                blob = try filter("/bin/gzip", ["-c", "-n"], tar)
                createdBy = c
            case .throwaway(let c):
                blob = emptyTar
                createdBy = c
                throwaway = true
            }
            let digest = try await pushBlob(repo, blob)
            let id = String(repeating: String(format: "%02x", i + 1), count: 32)
            var v1: [String: Any] = ["id": id, "created": "2020-01-0\(min(i + 1, 9))T00:00:00Z",
                                     "container_config": ["Cmd": ["/bin/sh", "-c", createdBy]]]
            if let parent { v1["parent"] = parent }
            if throwaway { v1["throwaway"] = true }
            if i == steps.count - 1 {
                v1["architecture"] = "amd64"
                v1["os"] = "linux"
                v1["config"] = ["User": user, "Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]]
            }
            let v1JSON = String(decoding: try JSONSerialization.data(withJSONObject: v1, options: [.sortedKeys]), as: UTF8.self)
            fsLayers.insert(digest.description, at: 0)
            history.insert(v1JSON, at: 0)
            parent = id
        }
        let payloadObject: [String: Any] = [
            "schemaVersion": 1, "name": repo, "tag": tag, "architecture": "amd64",
            "fsLayers": fsLayers.map { ["blobSum": $0] }, "history": history.map { ["v1Compatibility": $0] },
        ]
        let payload = [UInt8](try JSONSerialization.data(withJSONObject: payloadObject, options: [.sortedKeys]))
        let signed = try Self.signSchema1(payload)
        try await pushManifest(repo, reference: tag, signed, mediaType: MediaType.dockerSchema1Signed)
        return (CrispCore.Digest(sha256Bytes: SHA256.hash(data: payload)), diffIDs)
    }

    static func b64url(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// libtrust key id: base32 of the first 30 bytes of SHA-256 of the public key's DER, in
    /// groups of four separated by colons.
    static func keyID(_ key: P256.Signing.PublicKey) -> String {
        let hash = Array(SHA256.hash(data: key.derRepresentation)).prefix(30)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var bits = 0, value = 0, out = ""
        for b in hash {
            value = (value << 8) | Int(b)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[(value >> (bits - 5)) & 31])
                bits -= 5
            }
        }
        var groups: [String] = []
        var chars = Array(out)
        while !chars.isEmpty { groups.append(String(chars.prefix(4))); chars = Array(chars.dropFirst(4)) }
        return groups.joined(separator: ":")
    }

    /// The payload (compact JSON ending in `}`) with a libtrust "pretty" signature inserted
    /// before its closing brace.
    static func signSchema1(_ payload: [UInt8]) throws -> [UInt8] {
        let key = P256.Signing.PrivateKey()
        let raw = key.publicKey.rawRepresentation  // x || y
        let formatLength = payload.count - 1
        let protected = b64url(Array(#"{"formatLength":\#(formatLength),"formatTail":"\#(b64url(Array("}".utf8)))","time":"2020-01-01T00:00:00Z"}"#.utf8))
        let signingInput = Array((protected + "." + b64url(payload)).utf8)
        let signature = try key.signature(for: signingInput).rawRepresentation
        let jwk = #"{"crv":"P-256","kid":"\#(keyID(key.publicKey))","kty":"EC","x":"\#(b64url(raw.prefix(32)))","y":"\#(b64url(raw.suffix(32)))"}"#
        let sig = #","signatures":[{"header":{"jwk":\#(jwk),"alg":"ES256"},"signature":"\#(b64url(signature))","protected":"\#(protected)"}]}"#
        return Array(payload[0..<formatLength]) + Array(sig.utf8)
    }
}
