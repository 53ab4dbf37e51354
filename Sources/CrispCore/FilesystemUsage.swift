/// Space used on one filesystem, for ImageFsInfo and container stats.
public struct FilesystemUsage: Sendable, Equatable {
    public var mountpoint: String
    public var usedBytes: UInt64
    public var inodesUsed: UInt64

    public init(mountpoint: String, usedBytes: UInt64, inodesUsed: UInt64) {
        self.mountpoint = mountpoint
        self.usedBytes = usedBytes
        self.inodesUsed = inodesUsed
    }
}
