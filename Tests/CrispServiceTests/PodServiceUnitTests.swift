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

@Suite struct PodStatsParsingTests {
    @Test func procNetDevGivesEveryInterfaceButLoopback() {
        let text = """
            Inter-|   Receive                                                |  Transmit
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
                lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
              eth0:    5432      40    1    3    0     0          0         0     2100      21    2    4    0     0       0          0
            """
        let stats = ContainerService.interfaces(fromProcNetDev: text)
        #expect(stats == [InterfaceStats(name: "eth0", rxBytes: 5432, rxErrors: 1, txBytes: 2100, txErrors: 2,
                                         rxPackets: 40, rxDropped: 3, txPackets: 21, txDropped: 4)])
        #expect(ContainerService.interfaces(fromProcNetDev: "").isEmpty)
    }
}

@Suite struct DeviceResolutionTests {
    @Test func aCharacterDeviceIsResolvedToItsNumbers() throws {
        let d = try ContainerService.resolveDevices([(containerPath: "/dev/mine", hostPath: "/dev/null", permissions: "")])
        #expect(d.count == 1)
        #expect(d.first?.type == "c" && d.first?.major == 1 && d.first?.minor == 3)
        #expect(d.first?.permissions == "rwm")
        #expect(d.first?.containerPath == "/dev/mine")
    }

    @Test func aMissingPathOrAPlainFileIsTheCallersError() {
        #expect(throws: CrispError.self) { _ = try ContainerService.resolveDevices([(containerPath: "/dev/x", hostPath: "/nonexistent-device", permissions: "rwm")]) }
        #expect(throws: CrispError.self) { _ = try ContainerService.resolveDevices([(containerPath: "/dev/x", hostPath: "/etc/hostname", permissions: "rwm")]) }
    }
}

@Suite struct ImageVolumeTests {
    @Test func volumesAreMadeInsideTheRootEvenThroughASymlinkThatPointsOut() throws {
        let base = NSTemporaryDirectory() + "crisp-volumes-\(UUID().uuidString.prefix(8))"
        let root = base + "/rootfs", outside = base + "/outside"
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        // An image may carry a symlink that names a host path; it must resolve inside the rootfs.
        try FileManager.default.createSymbolicLink(atPath: root + "/vol", withDestinationPath: outside)
        try ContainerService.makeVolumeDirectories(["/data/cache", "/vol/x", "/mounted"], rootfs: root, except: ["/mounted"])
        var isDir: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: root + "/data/cache", isDirectory: &isDir) && isDir.boolValue)
        #expect(FileManager.default.fileExists(atPath: root + outside + "/x"), "the symlink was followed inside the root")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: outside))?.isEmpty == true, "nothing was made outside the root")
        #expect(!FileManager.default.fileExists(atPath: root + "/mounted"), "a path the request mounts is left alone")
    }
}
