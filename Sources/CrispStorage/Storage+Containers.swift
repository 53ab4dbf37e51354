public import CrispCore
import CrispOS
import Glibc
import Logging

extension Storage {
    /// Creates a container's read-write layer on its image's top layer and records the
    /// container. The name must be unused (`alreadyExists`), the image must exist (`notFound`).
    public func createContainer(_ options: CreateContainerOptions) async throws -> Container {
        try checkOpen()
        let layerID = LayerID.random()
        let parent: LayerID?
        do { parent = try metadata.beginContainer(options, layerID: layerID) } catch {
            throw storageError(error, "creating container \(options.name)")
        }
        let driver = self.driver
        do {
            let chain = try parent.map { try metadata.chain($0).map(\.id) } ?? []
            let durable = self.options.sync == .filesystem
            try await runOnThread {
                let target = try driver.createLayer(layerID, parentChain: chain)
                // The row commits durably under `sync = filesystem`, so the layer it names must be
                // on disk first, as for image layers: a power cut would otherwise leave a container
                // record whose storage is dropped at the next open (the vfs driver's copy, a
                // btrfs log tree without the new subvolume).
                if durable { try syncFilesystem(of: target.root) }
            }
            return try metadata.commitContainer(options, layerID: layerID)
        } catch {
            try? driver.removeLayer(layerID)
            try? metadata.deleteLayerRows([layerID])
            throw storageError(error, "creating container \(options.name)")
        }
    }

    public func container(_ id: ContainerID) throws -> Container? {
        try checkOpen()
        return try metadata.container(id)
    }

    public func container(named name: String) throws -> Container? {
        try checkOpen()
        return try metadata.container(named: name)
    }

    public func containers() throws -> [Container] {
        try checkOpen()
        return try metadata.containers()
    }

    public func setContainerMetadata(_ id: ContainerID, _ metadata: String) throws {
        try checkOpen()
        try self.metadata.updateContainerMetadata(id, metadata)
    }

    /// Mounts the container's root filesystem and returns its path. Reference-counted: mounting
    /// a mounted container only increments the count and returns the same path. The count is
    /// recorded in the metadata, so a restarted daemon keeps the mounts that containers still use.
    public func mountContainer(_ id: ContainerID) throws -> String {
        try checkOpen()
        guard let c = try metadata.container(id) else { throw CrispError.notFound("container \(id) not found") }
        if let m = mounts[c.layerID] {
            do { try metadata.setMountCount(layer: c.layerID, m.count + 1) } catch {
                throw storageError(error, "recording a mount of container \(id)")
            }
            mounts[c.layerID] = (m.count + 1, m.path)
            return m.path
        }
        let path: String
        do {
            let chain = try metadata.chain(c.layerID).dropFirst().map(\.id)
            path = try driver.mount(c.layerID, parentChain: Array(chain))
        } catch {
            throw storageError(error, "mounting the root filesystem of container \(id)")
        }
        do {
            try metadata.setMountCount(layer: c.layerID, 1)
        } catch {
            try? driver.unmount(c.layerID)
            throw storageError(error, "recording the mount of container \(id)")
        }
        mounts[c.layerID] = (1, path)
        return path
    }

    /// Drops one mount reference (all of them with `force`); unmounts at zero. Returns the
    /// references left. Unmounting a container that is not mounted is not an error.
    @discardableResult
    public func unmountContainer(_ id: ContainerID, force: Bool = false) throws -> Int {
        try checkOpen()
        guard let c = try metadata.container(id) else { throw CrispError.notFound("container \(id) not found") }
        guard let m = mounts[c.layerID] else { return 0 }
        let left = force ? 0 : m.count - 1
        if left > 0 {
            do { try metadata.setMountCount(layer: c.layerID, left) } catch {
                throw storageError(error, "recording an unmount of container \(id)")
            }
            mounts[c.layerID] = (left, m.path)
            return left
        }
        do {
            try unmountLayer(c.layerID)
            // Once unmounted, a stale count left by a failure here is reset at the next start-up.
            try metadata.setMountCount(layer: c.layerID, 0)
        } catch {
            throw storageError(error, "unmounting container \(id)")
        }
        return 0
    }

    /// The layer directories of the container's root filesystem on the overlay driver, for a
    /// caller that mounts it itself (idmapped lower layers for a user namespace); nil on the
    /// other drivers.
    public func overlayLayout(_ id: ContainerID) throws -> OverlayLayout? {
        try checkOpen()
        guard let c = try metadata.container(id) else { throw CrispError.notFound("container \(id) not found") }
        return (driver as? OverlayDriver)?.layout(c.layerID)
    }

    /// The path of a mounted container's root filesystem, or nil when it is not mounted.
    public func mountPath(_ id: ContainerID) throws -> String? {
        guard let c = try metadata.container(id) else { return nil }
        return mounts[c.layerID]?.path
    }

    /// Unmounts (whatever the count) and removes the container and its read-write layer.
    public func removeContainer(_ id: ContainerID) async throws {
        try checkOpen()
        guard let c = try metadata.container(id) else { throw CrispError.notFound("container \(id) not found") }
        guard exporting[c.layerID] == nil else {
            throw CrispError.failedPrecondition("container \(id) cannot be removed while its changes are being exported")
        }
        do {
            if mounts[c.layerID] != nil { try unmountLayer(c.layerID) }
            let layer = try metadata.beginRemoveContainer(id)
            let driver = self.driver
            try await runOnThread { try driver.removeLayer(layer) }
            try metadata.deleteLayerRows([layer])
            containerUsageCache[layer] = nil
        } catch {
            throw storageError(error, "removing container \(id)")
        }
    }

    /// Unmounts; a busy mount is detached (lazily unmounted) rather than left behind.
    func unmountLayer(_ layer: LayerID) throws {
        do {
            try driver.unmount(layer)
        } catch let e as SystemCallError where e.errno == EBUSY {
            logger.warning("rootfs busy, detaching it", metadata: ["layer": "\(layer)"])
            if let path = mounts[layer]?.path { try Mounts.unmount(path, detach: true) }
        }
        mounts[layer] = nil
    }
}
