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

    static func delete(root: String, id: String) async -> Outcome {
        guard let state = RuncStateFile.read(root: root, id: id),
              state.config?.hasHooks("poststop") == false,
              state.config?.cgroups?.systemd != true,
              (state.intelRdtPath ?? "").isEmpty else { return .useRuntime }
        if let pidfd = ProcessIdentity.pidfd(pid: state.initProcessPID, startedAt: state.initProcessStart) {
            close(pidfd)
            return .useRuntime
        }
        let cgroups = Array((state.cgroupPaths ?? [:]).values)
        // Empty cgroups only; a short patience covers a last thread still on its way out.
        guard cgroups.allSatisfy(hasNoProcesses),
              await CgroupLeftovers.remove(cgroups, patience: .milliseconds(200)).isEmpty else { return .useRuntime }
        // runc removes its state directory after the cgroups, as here; without it, runc no longer
        // knows the container, which is what a delete leaves.
        do { try FileManager.default.removeItem(atPath: root + "/" + id) } catch {
            return FileManager.default.fileExists(atPath: root + "/" + id) ? .useRuntime : .deleted
        }
        return .deleted
    }

    /// No process in the cgroup directory `dir` (or no such directory). A process in a cgroup
    /// nested in it (the container made one) is killed by CgroupLeftovers, as runc kills it.
    static func hasNoProcesses(_ dir: String) -> Bool {
        guard !dir.isEmpty, let procs = readSmallFile(dir + "/cgroup.procs") else { return true }
        return procs.allSatisfy(\.isWhitespace)
    }
}
