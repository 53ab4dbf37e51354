public import CrispCore
import CrispOS
import Foundation

/// Whether CRIU can checkpoint here. runc runs `criu` from PATH (`criu swrk`), so that is the one
/// asked; `criu check` fails the same way a dump would when the kernel has something CRIU does
/// not know (CRIU before 4.1 stops at the vDSO layout of kernels from 6.13 on).
public enum Criu {
    /// Where runc finds criu: the first `criu` on the spawn PATH.
    public static func path() -> String? {
        let dirs = Spawn.baseEnvironment.first { $0.hasPrefix("PATH=") }.map { $0.dropFirst(5).split(separator: ":") } ?? []
        return dirs.map { "\($0)/criu" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// nil when CRIU works; otherwise why not, in words an operator can act on, with criu's own output.
    public static func problem(path: String? = Criu.path()) async -> String? {
        guard let path else { return "criu is not installed (the Debian package criu provides it)" }
        let out: Spawn.Output
        do { out = try await Spawn.run(Spawn.Options(path: path, arguments: ["check"]), timeout: .seconds(30), cap: 1 << 16) } catch {
            return "\(path) check could not run: \(error.message)"
        }
        if out.status == 0 { return nil }
        let said = (out.stderrText + "\n" + String(decoding: out.stdout, as: UTF8.self))
            .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return "CRIU cannot checkpoint on this host: `\(path) check` exited \(out.status): " + said.prefix(4).joined(separator: " | ")
    }
}
