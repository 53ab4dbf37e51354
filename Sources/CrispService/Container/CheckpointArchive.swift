import CrispOCI
import Foundation

/// The layout of a checkpoint archive, as CRI-O writes it (names from checkpointctl's metadata
/// package), so that the kubelet's checkpoints, checkpointctl and CRI-O can read crisp's, and
/// crisp can restore theirs. An uncompressed tar with, at the top level:
/// `checkpoint/` (CRIU's images), `config.dump`, `spec.dump` (the OCI spec), `dump.log`,
/// `stats-dump`, and where there is something to say `bind.mounts`, `rootfs-diff.tar`,
/// `deleted.files` and the container's log.
enum CheckpointArchive {
    static let checkpointDirectory = "checkpoint"
    static let configDump = "config.dump"
    static let specDump = "spec.dump"
    static let bindMounts = "bind.mounts"
    static let rootfsDiff = "rootfs-diff.tar"
    static let deletedFiles = "deleted.files"
    static let containerLog = "io.kubernetes.cri-o.LogPath"

    /// `config.dump` (checkpointctl's ContainerConfig); times are RFC 3339 with nanoseconds, and
    /// Go's zero time when unset, as Go writes them.
    struct Config: Codable, Equatable {
        var id: String
        var name: String
        var rootfsImage: String?
        var rootfsImageRef: String?
        var rootfsImageName: String?
        var runtime: String?
        var createdTime: String
        var checkpointedTime: String
        var restoredTime: String
        var restored: Bool
    }

    /// One entry of `bind.mounts`: what a restore must find (or recreate) at each bind source.
    struct BindMount: Codable, Equatable {
        var source: String
        var destination: String
        var fileType: String
        var permissions: UInt32

        enum CodingKeys: String, CodingKey {
            case source, destination, permissions
            case fileType = "file_type"
        }
    }

    static let zeroTime = "0001-01-01T00:00:00Z"

    static func time(nanoseconds: Int64) -> String {
        // FoundationEssentials' formatter: ISO8601DateFormatter would load ICU into crispd.
        let seconds = Date.ISO8601FormatStyle().format(Date(timeIntervalSince1970: TimeInterval(nanoseconds / 1_000_000_000)))
        let fraction = nanoseconds % 1_000_000_000
        return fraction == 0 ? seconds : seconds.dropLast() + String(format: ".%09d", fraction) + "Z"
    }

    /// Mount targets the runtime sets up itself in every container; a restore does not ask the
    /// request for them, and a checkpoint leaves their contents out of the root filesystem diff.
    static let managedDestinations: Set<String> = [
        "/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/dev/shm", "/etc/resolv.conf",
        "/etc/hostname", "/etc/hosts", "/etc/passwd", "/etc/group", "/run/secrets", "/run/.containerenv",
    ]

    /// Bind mounts of the checkpointed spec that the new request must give again (its volumes).
    static func bindMounts(of spec: RuntimeSpec) -> [RuntimeSpec.Mount] {
        (spec.mounts ?? []).filter { m in
            (m.type == "bind" || (m.options ?? []).contains("bind") || (m.options ?? []).contains("rbind"))
                && !managedDestinations.contains(m.destination)
        }
    }

    /// The restore's mount check, as CRI-O's: every volume of the checkpointed container must be
    /// in the request (same container path); nil when all are, else the ones missing.
    static func missingMounts(checkpointed spec: RuntimeSpec, requested: [String]) -> [String]? {
        let have = Set(requested)
        let missing = bindMounts(of: spec).map(\.destination).filter { !have.contains($0) }
        return missing.isEmpty ? nil : missing.sorted()
    }
}
