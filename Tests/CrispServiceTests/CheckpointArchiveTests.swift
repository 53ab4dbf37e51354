import CrispOCI
import Foundation
@testable import CrispService
import Testing

/// The metadata of checkpoint archives in CRI-O's layout, and the restore's mount check.
@Suite struct CheckpointArchiveTests {
    @Test func configDumpUsesCheckpointctlsKeysAndGoTimes() throws {
        let config = CheckpointArchive.Config(
            id: "abc", name: "counter", rootfsImage: "busybox:1.36", rootfsImageRef: "sha256:1234", rootfsImageName: "busybox:1.36",
            runtime: "runc", createdTime: CheckpointArchive.time(nanoseconds: 1_764_504_000_123_456_789),
            checkpointedTime: CheckpointArchive.time(nanoseconds: 1_764_504_060_000_000_000),
            restoredTime: CheckpointArchive.zeroTime, restored: false)
        let object = try #require(JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as? [String: Any])
        #expect(Set(object.keys) == ["id", "name", "rootfsImage", "rootfsImageRef", "rootfsImageName", "runtime",
                                     "createdTime", "checkpointedTime", "restoredTime", "restored"])
        #expect(object["createdTime"] as? String == "2025-11-30T12:00:00.123456789Z")
        #expect(object["checkpointedTime"] as? String == "2025-11-30T12:01:00Z")
        #expect(object["restoredTime"] as? String == "0001-01-01T00:00:00Z")
        let bind = CheckpointArchive.BindMount(source: "/var/lib/kubelet/pods/u/volumes/x", destination: "/data", fileType: "directory", permissions: 0o755)
        let bindObject = try #require(JSONSerialization.jsonObject(with: JSONEncoder().encode(bind)) as? [String: Any])
        #expect(Set(bindObject.keys) == ["source", "destination", "file_type", "permissions"])
    }

    @Test func restoreNeedsTheCheckpointedVolumesButNotWhatTheRuntimeMounts() {
        var spec = RuntimeSpec()
        spec.mounts = [
            .init(destination: "/proc", type: "proc", source: "proc"),
            .init(destination: "/etc/hosts", type: "bind", source: "/run/crisp/pods/p/hosts", options: ["rbind", "ro"]),
            .init(destination: "/etc/resolv.conf", type: "bind", source: "/run/crisp/pods/p/resolv.conf", options: ["rbind"]),
            .init(destination: "/data", type: "bind", source: "/var/lib/kubelet/pods/u/volumes/data", options: ["rbind"]),
            .init(destination: "/cache", source: "/tmp/cache", options: ["bind", "rw"]),
            .init(destination: "/dev/shm", type: "bind", source: "/run/crisp/pods/p/shm", options: ["rbind"]),
        ]
        #expect(CheckpointArchive.bindMounts(of: spec).map(\.destination) == ["/data", "/cache"])
        #expect(CheckpointArchive.missingMounts(checkpointed: spec, requested: ["/data", "/cache", "/extra"]) == nil)
        #expect(CheckpointArchive.missingMounts(checkpointed: spec, requested: ["/data"]) == ["/cache"])
    }
}
