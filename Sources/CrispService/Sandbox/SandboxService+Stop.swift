public import CrispCore
import CrispOS
import CrispRuntime
import Foundation
import Glibc
import Logging
import CrispNetwork

extension SandboxService {
    /// Stops the pod: kills the infra process (SIGKILL: a SIGTERM sent before pause has finished
    /// execve is lost) and unmounts /dev/shm. Idempotent.
    public func stop(_ id: String) async throws(CrispError) {
        var s = try lookup(id)
        let handler = try handler(named: s.runtimeHandler)
        _ = try await runtime.stop(id: s.id, handler: handler, signal: SIGKILL, timeout: .zero)
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
        s.state = .notReady
        try persist(s)
        logger.info("pod stopped", metadata: ["pod": "\(s.id)"])
    }

    /// Removes the pod and everything crisp made for it. Removing an unknown pod succeeds.
    public func remove(_ id: String) async throws(CrispError) {
        let s: Sandbox
        do { s = try lookup(id) } catch where error.code == .notFound { return }
        if s.state == .ready || s.shmMounted || s.netnsPath != nil { try await stop(s.id) }
        let handler = try handler(named: s.runtimeHandler)
        try await runtime.delete(id: s.id, handler: handler)
        for dir in [s.runDirectory, "\(recordsDirectory)/\(s.id)", settings.exitDirectory + "/" + s.id] {
            try? FileManager.default.removeItem(atPath: dir)
        }
        sandboxes[s.id] = nil
        release(s.metadata.key)
        logger.info("pod removed", metadata: ["pod": "\(s.id)"])
    }

    /// Rebuilds the registry from disk after a (re)start: records are read, each pod whose infra
    /// process is gone is marked not ready.
    public func restore() async {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: recordsDirectory)) ?? []
        for id in names {
            guard let data = FileManager.default.contents(atPath: recordPath(id)),
                  var s = try? JSONDecoder().decode(Sandbox.self, from: data) else {
                logger.warning("skipping unreadable pod record", metadata: ["pod": "\(id)"])
                continue
            }
            if s.state == .ready, let handler = try? handler(named: s.runtimeHandler) {
                let state = try? await runtime.state(id: s.id, handler: handler)
                if state?.status != "running" {
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
