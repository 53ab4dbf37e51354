public import CrispCore
import Crypto

extension LayerID {
    /// The OCI chain id used as the layer id of image layers: the diff digest's hex for a base
    /// layer, else SHA-256 of "sha256:<parent> sha256:<diff>" — so two images sharing a base
    /// share its layers.
    public static func chainID(parent: LayerID?, diffDigest: CrispCore.Digest) -> LayerID {
        guard let parent else { return LayerID(uncheckedRawValue: diffDigest.hex) }
        let input = "sha256:\(parent.rawValue) \(diffDigest.description)"
        return LayerID(uncheckedRawValue: CrispCore.Digest(sha256Bytes: SHA256.hash(data: Array(input.utf8))).hex)
    }
}
