import CrispCore
@testable import CrispImage
import CrispOCI
import CrispStorage
import CrispTestSupport
import Foundation
import RegistryTestSupport
import Synchronization
import Testing

/// The state of a pull's layers as `crisp.v1.Images/PullWithProgress` streams it: every layer
/// from the manifest on, bytes as they arrive, done at the end; two pulls of one image share the
/// pull and see the same progress; a pull of a stored image sees every layer as present.
@Suite struct PullProgressTests {
    final class Seen: Sendable {
        let states = Mutex<[PullProgress]>([])
        func record(_ p: PullProgress) { states.withLock { $0.append(p) } }
        var all: [PullProgress] { states.withLock { $0 } }
    }

    @Test func layersGoFromWaitingThroughBytesToDoneAndConcurrentPullsShareThem() async throws {
        try await withPullFixture { f in
            let busybox = try FixtureLayer.busybox(compression: .none)
            let pushed = try await f.pusher.pushImage("test/progress", tag: "1", layers: [
                busybox, FixtureLayer([.file("etc/a", "a")]), FixtureLayer([.file("etc/b", "b")]),
            ])
            let ref = try ImageReference(parsing: "\(f.registry.host)/test/progress:1")
            let one = Seen(), two = Seen()
            async let a = f.puller.pull(ref, progress: { one.record($0) })
            async let b = f.puller.pull(ref, progress: { two.record($0) })
            let (ia, ib) = try await (a, b)
            #expect(ia.id == ib.id && ia.id == pushed.configDigest)

            for seen in [one, two] {
                let final = try #require(seen.all.last)
                #expect(final.layers.count == 3)
                #expect(final.layers.allSatisfy { $0.state == .done && $0.received == $0.size && $0.size > 0 }, "\(final.layers)")
                // Per layer, bytes only grow (the busybox layer is large enough to arrive in pieces).
                for i in 0..<3 {
                    let received = seen.all.filter { $0.layers.count == 3 }.map { $0.layers[i].received }
                    #expect(received == received.sorted(), "layer \(i): \(received)")
                }
            }
            let big = pushed.layers[0]
            let partial = one.all.contains { p in p.layers.first { $0.digest == big.digest }.map { $0.state == .downloading && $0.received < $0.size } ?? false }
            #expect(partial, "the large layer was never seen part-way")
            #expect(one.all.last == two.all.last, "both pulls watched the same download")

            let again = Seen()
            _ = try await f.puller.pull(ref, progress: { again.record($0) })
            #expect(again.all.last?.layers.map(\.state) == [.exists, .exists, .exists])
        }
    }
}
