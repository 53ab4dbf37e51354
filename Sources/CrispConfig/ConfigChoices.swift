/// The configuration's closed choices, parsed once when the file and flags are read. The raw
/// values are what the TOML and the flags spell. `cgroup_manager` is CrispCore's `CgroupManager`,
/// as the runtime layer uses it too.

/// `image_volumes`: what becomes of the volumes an image declares.
public enum ImageVolumes: String, Sendable, Equatable, CaseIterable {
    /// A directory in the container's own layer.
    case mkdir
    /// A directory of the container's own under its record, bind-mounted.
    case bind
    /// Nothing.
    case ignore
}

/// `storage_sync`: what is flushed to disk before it counts as stored.
public enum StorageSync: String, Sendable, Equatable, CaseIterable {
    /// The page cache is trusted: safe against a crashed daemon, not against power loss.
    case none
    /// New layers' filesystems, metadata commits and records are synced.
    case filesystem
}
