import IntegrationSupport
import CRIAPI
import CrispOS
import Foundation
import Testing

/// crispd as a child subreaper: conmon, once daemonized, is crispd's child rather than init's;
/// when it exits crispd reaps it (no zombie is left), while the exit statuses crispd's own waits
/// need (ExecSync's runc) still arrive intact.
@Suite(.serialized) struct SubreaperTests {
    typealias Lifecycle = CRI

    static func children(of pid: Int32) -> [(pid: Int32, zombie: Bool)] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.flatMap { tid in
            (readSmallFile("/proc/\(pid)/task/\(tid)/children") ?? "").split(separator: " ").compactMap { field -> (Int32, Bool)? in
                guard let child = Int32(field.trimmingCharacters(in: .whitespacesAndNewlines)),
                      let stat = readSmallFile("/proc/\(child)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
                return (child, stat[close...].dropFirst(2).first == "Z")
            }
        }
    }

    static func conmonPID(of id: String) -> Int32? {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid -> Int32? in
            guard let n = Int32(pid), let cmd = readSmallFile("/proc/\(pid)/cmdline") else { return nil }
            return cmd.hasPrefix("/usr/bin/conmon") && cmd.contains(id) ? n : nil
        }.first
    }

    @Test func conmonIsAdoptedAndReapedAndOwnStatusesSurvive() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await Lifecycle.world()
        defer { world.cleanup() }
        let crispd = world.crispd.processIdentifier
        try await world.crispd.withClients { runtime, _ in
            let pod = try await Lifecycle.runPod(runtime, "subreaper", world: world)
            let id = try await Lifecycle.startContainer(runtime, pod: pod, "adopted", ["/bin/sleep", "3600"])
            let conmon = try #require(Self.conmonPID(of: id))
            #expect(Self.children(of: crispd).contains { $0.pid == conmon }, "conmon \(conmon) is not crispd's child")
            // Many short-lived children of crispd's own while the reaper is active.
            for code in 0..<20 {
                #expect(try await Lifecycle.exec(runtime, id, "exit \(code % 7)").code == Int32(code % 7))
            }
            try await Lifecycle.removePod(runtime, pod.id)
            let gone = try await StreamingTests.eventually(within: .seconds(20)) {
                !Self.children(of: crispd).contains { $0.pid == conmon }
            }
            #expect(gone, "conmon \(conmon) was not reaped")
            #expect(!Self.children(of: crispd).contains { $0.zombie }, "zombies: \(Self.children(of: crispd))")
        }
        world.assertNoLeaks()
    }
}
