import CrispCore
import CrispOS
import Foundation
import Glibc

/// RemoveContainer and StopPodSandbox of an exited runc container without a `runc delete`. For a
/// container whose init has exited, runc 1.1's delete kills what is left in its cgroups (when it
/// shares a PID namespace), removes the cgroups and its state directory, and runs the poststop
/// hooks. As a process of its own it costs a Go start-up, 10–15 ms, on every container and every
/// pod; crisp removes the same two things itself, on the same evidence runc would use.
///
/// Anything else goes to the runtime: crun's state (no runc state file), an init still there
/// (a created container, or a zombie not yet reaped), a process left in a cgroup (runc freezes
/// and kills those), poststop hooks, systemd-managed cgroups (a unit to stop) and Intel RDT groups.
enum RuncStoppedDelete {
    enum Outcome: Equatable {
        case deleted
        /// Not a case for the fast path; the runtime's `delete` must do it.
        case useRuntime
    }

    /// `state`: the container's runc state file, as the caller read it from `root`.
    static func delete(_ state: RuncStateFile, root: String, id: String) async -> Outcome {
        guard state.config?.hasHooks("poststop") == false,
              state.config?.cgroups?.systemd != true,
              (state.intelRdtPath ?? "").isEmpty else { return .useRuntime }
        if let pidfd = ProcessIdentity.pidfd(pid: state.initProcessPID, startedAt: state.initProcessStart) {
            close(pidfd)
            return .useRuntime
        }
        let cgroups = Array((state.cgroupPaths ?? [:]).values)
        // Empty cgroups only; a short patience covers a last thread still on its way out. A
        // process in a cgroup nested in one (the container made it) is killed by CgroupLeftovers,
        // as runc kills it.
        guard cgroups.allSatisfy({ CgroupLeftovers.processes(in: $0).isEmpty }),
              await CgroupLeftovers.remove(cgroups, patience: .milliseconds(200)).isEmpty else { return .useRuntime }
        // runc removes its state directory after the cgroups, as here; without it, runc no longer
        // knows the container, which is what a delete leaves.
        do { try FileManager.default.removeItem(atPath: root + "/" + id) } catch {
            return FileManager.default.fileExists(atPath: root + "/" + id) ? .useRuntime : .deleted
        }
        return .deleted
    }
}
