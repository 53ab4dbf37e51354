public import CrispCore
import CCrispShim
import CrispOS
import CrispRuntime
import Foundation
import Glibc
import Logging
import CrispNetwork

extension SandboxService {
    /// Stops the pod: kills the infra process if there is one (SIGKILL: a SIGTERM sent before
    /// pause has finished execve is lost), unmounts /dev/shm, tears the network down and unpins
    /// the namespaces. The caller has stopped the containers. Idempotent.
    public func stop(_ id: String) async throws(CrispError) {
        var s = try lookup(id)
        let handler = try handler(named: s.runtimeHandler)
        if s.hasInfra {
            _ = try await runtime.stop(id: s.id, handler: handler, signal: SIGKILL, timeout: .zero)
        }
        if s.shmMounted {
            do { try Mounts.unmount(s.shmPath, detach: true) } catch {
                if (try? Mounts.isMountPoint(s.shmPath)) == true {
                    throw CrispError(.internal, "cannot unmount \(s.shmPath) of pod \(s.id): \(error)")
                }
            }
            s.shmMounted = false
        }
        if s.netnsPath != nil, let network {
            // DEL with the cached config and result, then the pinned namespace goes.
            try await network.tearDown(podID: s.id)
            s.netnsPath = nil
        }
        try await unpin(&s)
        // The infra exit may have been handled (and announced) while this stop was waiting.
        let wasReady = sandboxes[s.id]?.state == .ready
        s.state = .notReady
        try persist(s)
        logger.info("pod stopped", metadata: ["pod": "\(s.id)"])
        if wasReady { emit(.stopped, s.id) }
    }

    /// Removes the pod and everything crisp made for it. Removing an unknown pod succeeds.
    public func remove(_ id: String) async throws(CrispError) {
        let s: Sandbox
        do { s = try lookup(id) } catch where error.code == .notFound { return }
        if s.state == .ready || s.shmMounted || s.netnsPath != nil || s.ipcnsPath != nil || s.utsnsPath != nil {
            try await stop(s.id)
        }
        let handler = try handler(named: s.runtimeHandler)
        if s.hasInfra { try await runtime.delete(id: s.id, handler: handler) }
        if s.infraStorageID != nil { await infraImages?.release(podID: s.id) }
        for dir in [s.runDirectory, "\(recordsDirectory)/\(s.id)", settings.exitDirectory + "/" + s.id] {
            try? FileManager.default.removeItem(atPath: dir)
        }
        sandboxes[s.id] = nil
        release(s.metadata.key)
        logger.info("pod removed", metadata: ["pod": "\(s.id)"])
        emit(.deleted, s.id)
    }

    /// A pin is a bind mount of an nsfs inode; after a reboot the file is left on tmpfs or gone.
    static func isPinnedNamespace(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return crisp_fstatfs_type(fd) == 0x6e73_6673  // NSFS_MAGIC
    }

    func unpin(_ s: inout Sandbox) async throws(CrispError) {
        var kinds: Set<PinnsNamespaces.Kind> = []
        if s.ipcnsPath != nil { kinds.insert(.ipc) }
        if s.utsnsPath != nil { kinds.insert(.uts) }
        guard !kinds.isEmpty, let namespaces else { return }
        try await namespaces.remove(name: "crisp-" + s.id, kinds: kinds)
        s.ipcnsPath = nil
        s.utsnsPath = nil
    }

    /// Rebuilds the registry from disk after a (re)start: records are read; a pod whose infra
    /// process or pinned namespaces are gone (a reboot) is marked not ready.
    public func restore() async {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: recordsDirectory)) ?? []
        for id in names {
            guard let data = FileManager.default.contents(atPath: recordPath(id)),
                  var s = try? JSONDecoder().decode(Sandbox.self, from: data) else {
                logger.warning("skipping unreadable pod record", metadata: ["pod": "\(id)"])
                continue
            }
            if s.state == .ready {
                var alive = [s.ipcnsPath, s.utsnsPath, s.netnsPath].allSatisfy { path in
                    path.map(Self.isPinnedNamespace) ?? true
                }
                if alive, s.hasInfra, let handler = try? handler(named: s.runtimeHandler) {
                    alive = (try? await runtime.state(id: s.id, handler: handler))?.status == "running"
                }
                if !alive {
                    s.state = .notReady
                    try? persist(s)
                }
            }
            sandboxes[s.id] = s
            reservations[s.metadata.key] = s.id
        }
        if !sandboxes.isEmpty { logger.info("restored pods", metadata: ["count": "\(sandboxes.count)"]) }
    }
}
