public import CrispCore
import CrispOS

extension Storage {
    /// How long a container layer's measured usage is reused before it is walked again.
    static let usageCacheLifetime: Duration = .seconds(10)

    /// Space used by image layers (from sizes recorded when each layer was applied: no walk) and
    /// by container read-write layers (walked at most every 10 s per container).
    public func usage() async throws -> (images: FilesystemUsage, containers: FilesystemUsage) {
        try checkOpen()
        let images = try metadata.imageLayerUsage()
        var bytes: UInt64 = 0, inodes: UInt64 = 0
        for c in try metadata.containers() {
            let u = try await layerUsage(c.layerID)
            bytes += u.bytes
            inodes += u.inodes
        }
        return (FilesystemUsage(mountpoint: driver.home, usedBytes: UInt64(max(0, images.bytes)), inodesUsed: UInt64(max(0, images.inodes))),
                FilesystemUsage(mountpoint: driver.home, usedBytes: bytes, inodesUsed: inodes))
    }

    /// Space used by one container's read-write layer (cached for 10 s).
    public func containerUsage(_ id: ContainerID) async throws -> FilesystemUsage {
        try checkOpen()
        guard let c = try metadata.container(id) else { throw CrispError.notFound("container \(id) not found") }
        let u = try await layerUsage(c.layerID)
        return FilesystemUsage(mountpoint: driver.home, usedBytes: u.bytes, inodesUsed: u.inodes)
    }

    func layerUsage(_ layer: LayerID) async throws -> (bytes: UInt64, inodes: UInt64) {
        let now = ContinuousClock.now
        if let cached = containerUsageCache[layer], now - cached.at < Self.usageCacheLifetime {
            return (cached.bytes, cached.inodes)
        }
        let dir = driver.changesDirectory(layer)
        let u = try await runOnThread { try DirectoryWalk.usage(of: dir) }
        containerUsageCache[layer] = (now, u.bytes, u.inodes)
        return u
    }
}
