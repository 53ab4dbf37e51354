public import CrispCore
import CrispOS
import CrispSecurity
import CrispRuntime
import Foundation
import Logging
import CrispNetwork

extension SandboxService {
    /// Stops the pod: kills the infra process if there is one (SIGKILL: a SIGTERM sent before
    /// pause has finished execve is lost), unmounts /dev/shm, tears the network down and unpins
    /// the namespaces. The caller has stopped the containers. Idempotent; operations on one pod
    /// run one at a time.
    public func stop(_ id: String) async throws(CrispError) {
        let s: Sandbox
        do { s = try lookup(id) } catch where error.code == .notFound { return }
        try await serializer.exclusively(s.id) { () async throws(CrispError) in try await stopHeld(s.id) }
    }

    /// `stop` with the pod's key already held. Every step re-reads the record after its await and
    /// writes back only what it changed, so an infra exit recorded meanwhile is kept.
    func stopHeld(_ id: String) async throws(CrispError) {
        guard let s = sandboxes[id] else { return }
        let handler = try handler(named: s.runtimeHandler)
        // The infra process is killed and then deleted from the runtime while CNI DEL runs, as
        // containerd deletes a sandbox's task once it exits: neither needs the other, and DEL
        // (a chain of plugins) takes longer than both, so RemovePodSandbox is left with no
        // runtime call at all.
        let network = s.netnsPath != nil ? self.network : nil
        let deleteInfra = s.hasInfra && s.infraDeleted != true
        let infraImages = s.infraStorageID != nil ? self.infraImages : nil
        async let killed: CrispError? = deleteInfra ? Self.failure { [runtime] () async throws(CrispError) in
            _ = try await runtime.stop(id: s.id, handler: handler, signal: .kill, timeout: .zero)
            try await runtime.delete(id: s.id, handler: handler)
            // The pause image's layer goes too: unmounting an overlay syncs its upper filesystem.
            await infraImages?.release(podID: s.id)
        } : nil
        // DEL with the cached config and result, then the pinned namespace goes.
        async let deleted: CrispError? = Self.failure { () async throws(CrispError) in
            try await network?.tearDown(podID: s.id)
        }
        let (killError, deleteError) = await (killed, deleted)
        if deleteError == nil, network != nil { try change(id) { $0.netnsPath = nil } }
        if killError == nil, deleteInfra {
            try change(id) {
                $0.infraDeleted = true
                $0.infraStorageID = nil
            }
        }
        if let killError { throw killError }
        if let deleteError { throw deleteError }
        if s.shmMounted {
            do { try host.unmountShm(at: s.shmPath) } catch {
                throw CrispError(.internal, "stopping pod \(s.id): \(error.message)", cause: error.cause)
            }
            try change(id) { $0.shmMounted = false }
        }
        try await unpin(id)
        // The infra exit may have been handled (and announced) while this stop was waiting.
        let wasReady = sandboxes[id]?.state == .ready
        try change(id) { $0.state = .notReady }
        logger.info("pod stopped", metadata: ["pod": "\(id)"])
        if wasReady { emit(.stopped, id) }
    }

    /// Runs `body` and returns its error, so that two steps can run side by side (`async let`)
    /// and both be waited for before either failure is reported.
    static func failure(_ body: () async throws(CrispError) -> Void) async -> CrispError? {
        do { try await body() } catch { return error }
        return nil
    }

    /// Applies `edit` to the current record of the pod and persists it.
    func change(_ id: String, _ edit: (inout Sandbox) -> Void) throws(CrispError) {
        guard var current = sandboxes[id] else { return }
        edit(&current)
        try persist(current)
    }

    /// Removes the pod and everything crisp made for it. Removing an unknown pod succeeds.
    public func remove(_ id: String) async throws(CrispError) {
        let found: Sandbox
        do { found = try lookup(id) } catch where error.code == .notFound { return }
        try await serializer.exclusively(found.id) { () async throws(CrispError) in
            guard let s = sandboxes[found.id] else { return }
            if s.state == .ready || s.shmMounted || s.netnsPath != nil || s.ipcnsPath != nil || s.utsnsPath != nil
                || s.usernsPath != nil {
                try await stopHeld(s.id)
            }
            let handler = try handler(named: s.runtimeHandler)
            // A stop that ran before this remove has deleted the infra already (re-read: the
            // stop above may just have done it).
            if s.hasInfra, sandboxes[s.id]?.infraDeleted != true { try await runtime.delete(id: s.id, handler: handler) }
            if sandboxes[s.id]?.infraStorageID != nil { await infraImages?.release(podID: s.id) }
            for dir in [s.runDirectory, "\(recordsDirectory)/\(s.id)", settings.exitDirectory + "/" + s.id] {
                try? FileManager.default.removeItem(atPath: dir)
            }
            sandboxes[s.id] = nil
            reservations.release(s.metadata.key)
            if let level = s.mcsLevel { settings.security.mcs.release(level) }
            logger.info("pod removed", metadata: ["pod": "\(s.id)"])
            emit(.deleted, s.id)
        }
    }

    func unpin(_ id: String) async throws(CrispError) {
        guard let s = sandboxes[id] else { return }
        var kinds: Set<PinnsNamespaces.Kind> = []
        if s.ipcnsPath != nil { kinds.insert(.ipc) }
        if s.utsnsPath != nil { kinds.insert(.uts) }
        if s.usernsPath != nil { kinds.insert(.user) }
        guard !kinds.isEmpty else { return }
        try await host.unpinNamespaces(name: "crisp-" + s.id, kinds: kinds)
        try change(id) {
            $0.ipcnsPath = nil
            $0.utsnsPath = nil
            $0.usernsPath = nil
        }
    }

    /// Rebuilds the registry from disk after a (re)start: records are read; a pod whose infra
    /// process or pinned namespaces are gone (a reboot) is marked not ready; and what a
    /// RunPodSandbox a crash cut short made before its record was written is removed. Runs
    /// before crispd serves, so no RunPodSandbox is in flight.
    public func restore() async {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: recordsDirectory)) ?? []
        var interrupted = Set((try? FileManager.default.contentsOfDirectory(atPath: settings.runRoot + "/sandboxes")) ?? [])
        for id in names {
            guard let data = FileManager.default.contents(atPath: recordPath(id)),
                  var s = try? JSONDecoder().decode(Sandbox.self, from: data) else {
                interrupted.insert(id)
                continue
            }
            interrupted.remove(s.id)
            if s.state == .ready {
                var alive = [s.ipcnsPath, s.utsnsPath, s.netnsPath, s.usernsPath].allSatisfy { path in
                    path.map(host.isPinnedNamespace) ?? true
                }
                if alive, s.hasInfra, let handler = try? handler(named: s.runtimeHandler) {
                    alive = (try? await runtime.state(id: s.id, handler: handler))?.status == .running
                }
                if !alive {
                    s.state = .notReady
                    try? persist(s)
                }
            }
            sandboxes[s.id] = s
            reservations.restore(s.metadata.key, for: s.id)
            if let level = s.mcsLevel { settings.security.mcs.claim(level) }
        }
        for id in interrupted.sorted() where sandboxes[id] == nil { await discardInterruptedRun(id) }
        if !sandboxes.isEmpty { logger.info("restored pods", metadata: ["count": "\(sandboxes.count)"]) }
    }

    /// Everything a RunPodSandbox may have made for `id` before its record: the infra container
    /// and its root filesystem, the shm mount, the pinned namespaces, the CNI attachment (DEL
    /// from the cached result frees the IP) and the pod's directories.
    func discardInterruptedRun(_ id: String) async {
        for handler in settings.handlers.values { try? await runtime.delete(id: id, handler: handler) }
        await infraImages?.release(podID: id)
        let runDirectory = settings.runRoot + "/sandboxes/" + id
        try? host.unmountShm(at: runDirectory + "/shm")
        try? await network?.tearDown(podID: id)
        try? await host.unpinNamespaces(name: "crisp-" + id, kinds: Set(PinnsNamespaces.Kind.allCases))
        try? FileManager.default.removeItem(atPath: runDirectory)
        try? FileManager.default.removeItem(atPath: recordsDirectory + "/" + id)
        logger.notice("removed what an interrupted RunPodSandbox left", metadata: ["pod": "\(id)"])
    }
}
