import CrispCore
import CrispRuntime
@testable import CrispService
import Foundation
import Testing

@Suite struct EventHubTests {
    static func event(_ kind: LifecycleEvent.Kind, _ id: String) -> LifecycleEvent {
        LifecycleEvent(kind: kind, id: id, sandboxID: "pod", isSandbox: false, at: 1)
    }

    @Test func everySubscriberGetsEveryEventInOrder() async {
        let hub = EventHub()
        let a = hub.subscribe(), b = hub.subscribe()
        #expect(hub.subscriberCount == 2)
        for k in [LifecycleEvent.Kind.created, .started, .stopped, .deleted] { hub.emit(Self.event(k, "c1")) }
        hub.close()
        var gotA: [LifecycleEvent.Kind] = [], gotB: [LifecycleEvent.Kind] = []
        for await e in a { gotA.append(e.kind) }
        for await e in b { gotB.append(e.kind) }
        #expect(gotA == [.created, .started, .stopped, .deleted])
        #expect(gotB == gotA)
    }

    @Test func aSlowSubscriberLosesTheOldestEventsAndTheyAreCounted() async {
        let hub = EventHub(bufferSize: 2)
        let s = hub.subscribe()
        for i in 0..<5 { hub.emit(Self.event(.created, "c\(i)")) }
        hub.close()
        var ids: [String] = []
        for await e in s { ids.append(e.id) }
        #expect(ids == ["c3", "c4"])
        #expect(hub.dropped == 3)
    }

    @Test func subscribersThatStopListeningAreForgotten() async {
        let hub = EventHub()
        do {
            let task = Task { for await _ in hub.subscribe() {} }
            while hub.subscriberCount == 0 { await Task.yield() }
            task.cancel()
            await task.value
        }
        #expect(hub.subscriberCount == 0)
        hub.close()
        var count = 0
        for await _ in hub.subscribe() { count += 1 }
        #expect(count == 0, "after close a subscription ends at once")
    }
}
