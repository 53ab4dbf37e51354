public import CrispCore
import Foundation

/// A seccomp profile as people write them: the Docker/Moby JSON format that CRI-O, containerd
/// and the Security Profiles Operator read. It is a superset of the OCI `linux.seccomp` object:
/// `archMap` names each architecture's companions, `name` may stand for `names`, and rules may
/// depend on the container's capabilities or the host's architecture (`includes`/`excludes`).
/// `SeccompCompiler` turns it into the OCI form for one container.
public struct SeccompProfile: Codable, Sendable, Equatable {
    public var defaultAction: String
    public var defaultErrnoRet: UInt32?
    public var architectures: [String]?
    public var archMap: [ArchMap]?
    public var flags: [String]?
    public var syscalls: [Rule]?

    public struct ArchMap: Codable, Sendable, Equatable {
        public var architecture: String
        public var subArchitectures: [String]?
    }

    public struct Rule: Codable, Sendable, Equatable {
        public var name: String?
        public var names: [String]?
        public var action: String
        public var errnoRet: UInt32?
        public var args: [Arg]?
        public var includes: Filter?
        public var excludes: Filter?

        /// Every syscall the rule names, `name` and `names` together.
        public var allNames: [String] { (name.map { [$0] } ?? []) + (names ?? []) }
    }

    public struct Arg: Codable, Sendable, Equatable {
        public var index: UInt
        public var value: UInt64
        public var valueTwo: UInt64?
        public var op: String
    }

    /// When a rule applies. `caps`: the container must have every one (includes) or it must
    /// have none of them (excludes). `arches`: the host's architecture, in libseccomp's
    /// `SCMP_ARCH_` names or Go's (`amd64`, `arm64`). `minKernel`: `MAJOR.MINOR`.
    public struct Filter: Codable, Sendable, Equatable {
        public var caps: [String]?
        public var arches: [String]?
        public var minKernel: String?
    }

    static let actions: Set<String> = [
        "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",
    ]
    static let operators: Set<String> = [
        "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
    ]
    static let knownFlags: Set<String> = [
        "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ]

    /// Decodes and checks a profile.
    /// - Parameter source: what to call it in errors (the file's path, or "the built-in profile").
    /// - Throws: `invalidArgument` naming `source` and the first problem: not JSON, a missing
    ///   `defaultAction`, an unknown action, operator or flag, a rule without syscall names, an
    ///   argument index past 5. `SCMP_ACT_NOTIFY` is refused: it needs a seccomp agent, and
    ///   crisp runs none.
    public static func parse(_ bytes: [UInt8], source: String) throws(CrispError) -> SeccompProfile {
        let profile: SeccompProfile
        do {
            profile = try JSONDecoder().decode(SeccompProfile.self, from: Data(bytes))
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw .invalidArgument("seccomp profile \(source) is malformed: \"\(key.stringValue)\" is missing\(Self.where(ctx.codingPath))")
        } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx) {
            throw .invalidArgument("seccomp profile \(source) is malformed: wrong type\(Self.where(ctx.codingPath))")
        } catch let DecodingError.dataCorrupted(ctx) {
            throw .invalidArgument("seccomp profile \(source) is not valid JSON\(Self.where(ctx.codingPath))")
        } catch {
            throw .invalidArgument("seccomp profile \(source) cannot be read as JSON")
        }
        try profile.check(source: source)
        return profile
    }

    private static func `where`(_ path: [any CodingKey]) -> String {
        path.isEmpty ? "" : " at " + path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    func check(source: String) throws(CrispError) {
        func bad(_ why: String) -> CrispError { .invalidArgument("seccomp profile \(source): \(why)") }
        func checkAction(_ action: String, _ place: String) throws(CrispError) {
            if action == "SCMP_ACT_NOTIFY" {
                throw bad("\(place) uses SCMP_ACT_NOTIFY, which needs a seccomp agent; crisp does not run one")
            }
            guard Self.actions.contains(action) else { throw bad("\(place) has the unknown action \"\(action)\"") }
        }
        try checkAction(defaultAction, "defaultAction")
        for f in flags ?? [] where !Self.knownFlags.contains(f) { throw bad("unknown flag \"\(f)\"") }
        for a in (architectures ?? []) + (archMap ?? []).flatMap({ [$0.architecture] + ($0.subArchitectures ?? []) })
        where !a.hasPrefix("SCMP_ARCH_") {
            throw bad("unknown architecture \"\(a)\" (expected SCMP_ARCH_…)")
        }
        for (i, rule) in (syscalls ?? []).enumerated() {
            let names = rule.allNames
            guard !names.isEmpty, !names.contains(where: \.isEmpty) else { throw bad("syscalls[\(i)] names no syscall") }
            try checkAction(rule.action, "syscalls[\(i)] (\(names[0]))")
            for arg in rule.args ?? [] {
                guard arg.index < 6 else { throw bad("syscalls[\(i)] (\(names[0])) has argument index \(arg.index); syscalls have 6") }
                guard Self.operators.contains(arg.op) else {
                    throw bad("syscalls[\(i)] (\(names[0])) has the unknown operator \"\(arg.op)\"")
                }
            }
        }
    }
}
