public import CrispCore
import CrispOCI
import Crypto
import Foundation


extension Storage {
    /// Checks that every image listed is whole and is what its digests say, without changing
    /// anything (`crispctl check`; the reliability suite runs it after every kill):
    /// - the image's config hashes to the image id, and its stored manifest to the digest its
    ///   repo digest names;
    /// - its top layer and every layer below are recorded and complete, and the chain is the
    ///   one the config's diff_ids give (each layer id is the chain id of its parent and diff
    ///   digest, so a layer is tied to the content digest it was verified against when applied);
    /// - every layer has its directory, and every layer directory has its record;
    /// - every container's layer and image are there.
    /// Layer contents are not re-read: the diff digest covers the tar they came from, which the
    /// store does not keep, so content is verified once, while it is applied.
    public func check() throws -> StoreCheckReport {
        try checkOpen()
        var report = StoreCheckReport()
        func error(_ subject: String, _ problem: String) { report.findings.append(.init(severity: .error, subject: subject, problem: problem)) }
        func notice(_ subject: String, _ problem: String) { report.findings.append(.init(severity: .notice, subject: subject, problem: problem)) }

        let layers = try metadata.layers()
        report.layers = layers.count
        let byID = Dictionary(layers.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let incomplete = try metadata.incompleteLayers()
        for id in incomplete {
            notice("layer \(id)", "incomplete: being written now (a pull or a container being made), or left by a crash and removed at the next start")
        }
        let onDisk = Set(try driver.layerIDsOnDisk())
        let recorded = try metadata.allLayerIDs()
        for layer in layers {
            if let parent = layer.parent, byID[parent] == nil {
                error("layer \(layer.id)", "its parent \(parent) is not a complete layer")
            }
            if let diff = layer.diffDigest, LayerID.chainID(parent: layer.parent, diffDigest: diff) != layer.id {
                error("layer \(layer.id)", "its id is not the chain id of its parent and diff digest \(diff)")
            }
            if !onDisk.contains(layer.id.rawValue) {
                error("layer \(layer.id)", "its directory is missing from \(driver.home)")
            }
        }
        for name in onDisk.subtracting(recorded).sorted() {
            notice("layer \(name)", "a directory in \(driver.home) without a record; removed at the next start")
        }

        let images = try metadata.images()
        report.images = images.count
        for image in images {
            let subject = "image \(image.id)" + (image.names.first.map { " (\($0))" } ?? "")
            if CrispCore.Digest(sha256Bytes: Array(SHA256.hash(data: image.config))) != image.id {
                error(subject, "its config does not hash to its id")
            }
            if !image.manifest.isEmpty {
                let manifestDigest = CrispCore.Digest(sha256Bytes: Array(SHA256.hash(data: image.manifest)))
                let named = image.repoDigests.compactMap { $0.split(separator: "@").last.map(String.init) }
                if !named.isEmpty, !named.contains(manifestDigest.description) {
                    error(subject, "its stored manifest hashes to \(manifestDigest), which none of its repo digests names")
                }
            }
            guard let top = image.topLayer else { continue }
            let chain = try metadata.chain(top)
            guard let first = chain.first, first.id == top, byID[top] != nil else {
                error(subject, "its top layer \(top) is missing or incomplete")
                continue
            }
            if let broken = chain.first(where: { byID[$0.id] == nil }) {
                error(subject, "layer \(broken.id) of it is missing or incomplete")
                continue
            }
            if chain.last?.parent != nil {
                error(subject, "its layer chain breaks below \(chain.last!.id)")
                continue
            }
            if let config = try? JSONDecoder().decode(ImageConfiguration.self, from: Data(image.config)) {
                let stored = chain.reversed().compactMap(\.diffDigest)
                if stored != config.rootfs.diffIDs {
                    error(subject, "its layers (\(stored.count)) are not the ones its config lists (\(config.rootfs.diffIDs.count) diff_ids)")
                }
            }
        }

        let containers = try metadata.containers()
        report.containers = containers.count
        let imageIDs = Set(images.map(\.id))
        for c in containers {
            if byID[c.layerID] == nil {
                error("container \(c.id)", "its layer \(c.layerID) is missing")
            }
            if !imageIDs.contains(c.imageID) {
                error("container \(c.id)", "its image \(c.imageID) is missing")
            }
        }
        return report
    }
}
