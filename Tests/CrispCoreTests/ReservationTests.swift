import CrispCore
import Synchronization
import Testing

/// An actor that creates things under names the way the services do, with a gate so the test
/// decides when the first creation ends.
actor NamedMaker {
    var reservations = NameReservations()
    var made: [String] = []
    private var gate: CheckedContinuation<Void, Never>?
    private var gateWaiters: [CheckedContinuation<Void, Never>] = []

    enum Outcome: Equatable, Sendable { case made(String), exists(String) }

    func make(_ name: String, id: String, fail: Bool = false) async -> Outcome {
        while true {
            switch reservations.reserve(name, for: id) {
            case .reserved:
                await withCheckedContinuation { c in
                    gate = c
                    gateWaiters.forEach { $0.resume() }
                    gateWaiters = []
                }
                reservations.finish(name, keep: !fail)
                if fail { return .exists("failed") }
                made.append(id)
                return .made(id)
            case .taken(let owner): return .exists(owner)
            case .wait: await withCheckedContinuation { reservations.enqueue(name, $0) }
            }
        }
    }

    func waitUntilInFlight() async {
        if gate != nil { return }
        await withCheckedContinuation { gateWaiters.append($0) }
    }

    func release() {
        gate?.resume()
        gate = nil
    }
}

@Suite struct NameReservationTests {
    @Test func aTwinWaitsForTheCreationInFlightAndThenFindsItsResult() async {
        let maker = NamedMaker()
        async let first = maker.make("pod", id: "A")
        await maker.waitUntilInFlight()
        async let twin = maker.make("pod", id: "B")
        // The twin is parked on the reservation; nothing it does can finish before the release.
        await maker.release()
        #expect(await first == .made("A"))
        #expect(await twin == .exists("A"))
        #expect(await maker.made == ["A"])
    }

    @Test func aTwinCreatesAfterAllWhenTheFirstFailed() async {
        let maker = NamedMaker()
        async let first = maker.make("pod", id: "A", fail: true)
        await maker.waitUntilInFlight()
        async let twin = maker.make("pod", id: "B")
        await maker.release()
        #expect(await first == .exists("failed"))
        await maker.waitUntilInFlight()
        await maker.release()
        #expect(await twin == .made("B"))
    }

    @Test func releasedNamesAreFreeAndRestoredNamesAreTaken() {
        var r = NameReservations()
        r.restore("a", for: "1")
        guard case .taken(by: "1") = r.reserve("a", for: "2") else { Issue.record("restored name not taken"); return }
        r.release("a")
        guard case .reserved = r.reserve("a", for: "3") else { Issue.record("released name not free"); return }
        // A name still in flight is not released by a removal racing with its creation.
        r.release("a")
        #expect(r.owner(of: "a") == "3")
    }
}

final class Log: Sendable {
    private let entries = Mutex<[String]>([])
    func append(_ s: String) { entries.withLock { $0.append(s) } }
    var all: [String] { entries.withLock { $0 } }
}

@Suite struct KeyedSerializerTests {
    @Test func oneKeyRunsOneAtATimeInArrivalOrderOtherKeysDoNot() async {
        let serializer = KeyedSerializer()
        let log = Log()
        await serializer.acquire("k")
        async let a: Void = serializer.exclusively("k") { log.append("a") }
        async let other: Void = serializer.exclusively("other") { log.append("other") }
        await other
        #expect(log.all == ["other"], "a different key is not held up")
        await serializer.release("k")
        await a
        #expect(log.all == ["other", "a"])
    }

    @Test func theKeyIsReleasedWhenTheBodyThrows() async {
        struct Boom: Error {}
        let serializer = KeyedSerializer()
        await #expect(throws: Boom.self) { try await serializer.exclusively("k") { () throws(Boom) in throw Boom() } }
        let ran = await serializer.exclusively("k") { true }
        #expect(ran)
    }
}
