import CrispCore
import CrispOS
import CrispTestSupport
import Foundation
import Glibc
import Testing
@testable import CrispStorage

/// `Storage.check`: a healthy store has no errors; a missing layer directory, an image whose
/// config does not hash to its id or does not list its layers, and a stray directory are found.
@Suite("Store check")
struct StoreCheckTests {
    static func config(_ diffIDs: [CrispCore.Digest]) -> [UInt8] {
        Array(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[\#(diffIDs.map { "\"\($0)\"" }.joined(separator: ","))]}}"#.utf8)
    }

    @Test("healthy, then each kind of damage is named", arguments: copyAndOverlayDrivers)
    func findsWhatIsWrong(driver: String) async throws {
        try await withStorage(driver) { f in
            let s = f.storage
            let base = try await f.layer([.file("a", "1")])
            let top = try await f.layer([.file("b", "2")], parent: base)
            let config = Self.config([base.diffDigest!, top.diffDigest!])
            let image = try await s.createImage(CreateImageOptions(id: diffDigest(of: config), names: ["example.com/ok:1"], topLayer: top.id, config: config))
            _ = try await s.createContainer(CreateContainerOptions(name: "user", imageID: image.id))

            let healthy = try await s.check()
            #expect(healthy.errors == 0, "\(healthy.findings)")
            #expect(healthy.images == 1 && healthy.layers == 3 && healthy.containers == 1)

            // A config that lists one layer for a two-layer image, and one that is not its id's.
            let short = Self.config([base.diffDigest!])
            _ = try await s.createImage(CreateImageOptions(id: diffDigest(of: short), names: ["example.com/short:1"], topLayer: top.id, config: short))
            _ = try await s.createImage(CreateImageOptions(id: diffDigest(of: Array("other".utf8)), names: ["example.com/forged:1"],
                                                           topLayer: top.id, config: config))
            // Where the driver keeps layer directories (vfs: under dir/).
            let layers = s.driver.home + (driver == "vfs" ? "/dir" : "")
            let stray = layers + "/" + String(repeating: "e", count: 64)
            #expect(mkdir(stray, 0o700) == 0)
            let hidden = layers + "/hidden-base"
            #expect(rename(layers + "/" + base.id.rawValue, hidden) == 0)
            defer { _ = rename(hidden, layers + "/" + base.id.rawValue) }

            let report = try await s.check()
            let problems = report.findings.map { "\($0.severity) \($0.subject): \($0.problem)" }
            #expect(problems.contains { $0.hasPrefix("error layer \(base.id)") && $0.contains("directory is missing") }, "\(problems)")
            #expect(problems.contains { $0.contains("example.com/short:1") && $0.contains("not the ones its config lists") }, "\(problems)")
            #expect(problems.contains { $0.contains("example.com/forged:1") && $0.contains("does not hash to its id") }, "\(problems)")
            #expect(problems.contains { $0.hasPrefix("notice layer eeee") }, "\(problems)")
            #expect(!problems.contains { $0.contains("example.com/ok:1") }, "the whole image is fine: \(problems)")
            rmdir(stray)
        }
    }
}
