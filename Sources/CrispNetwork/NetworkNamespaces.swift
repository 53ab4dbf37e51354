public import CrispCore
import CrispOS
import Foundation
import Glibc

/// Creates and removes pinned network namespaces. `PinnsNamespaces` does it through the
/// crisp-pinns helper; `FakeNetworkNamespaces` only records, for tests without root.
public protocol NetworkNamespaceProvider: Sendable {
    /// The path a pod's pinned netns has (whether or not it exists).
    func path(for name: String) -> String
    /// Creates a new network namespace (loopback up) pinned at `path(for: name)` and returns that
    /// path; inside the user namespace pinned at `userNamespace` when given, which then owns it.
    /// Throws `alreadyExists` when the pin exists.
    func create(name: String, userNamespace: String?) async throws(CrispError) -> String
    /// Unpins and removes; a pin that does not exist is not an error.
    func remove(name: String) async throws(CrispError)
    /// Whether the pin exists.
    func exists(name: String) -> Bool
}

/// Namespace work through the single-threaded `crisp-pinns` helper (see ARCHITECTURE.md): the
/// Swift process never unshares or setns's itself.
public struct PinnsNamespaces: NetworkNamespaceProvider {
    /// The helper binary.
    public var pinnsPath: String
    /// The pin root: network namespaces go to `pinDir/netns/NAME` (`/var/run` gives `ip netns`'s
    /// directory), IPC and UTS ones to `pinDir/ipcns`, `pinDir/utsns`.
    public var pinDir: String
    public var timeout: Duration

    public init(pinnsPath: String, pinDir: String = "/var/run", timeout: Duration = .seconds(30)) {
        self.pinnsPath = pinnsPath
        self.pinDir = pinDir
        self.timeout = timeout
    }

    public enum Kind: String, Sendable, CaseIterable { case net, ipc, uts, user }

    public func path(for name: String) -> String { path(.net, name) }

    public func path(_ kind: Kind, _ name: String) -> String { "\(pinDir)/\(kind.rawValue)ns/\(name)" }

    public func exists(name: String) -> Bool { access(path(for: name), F_OK) == 0 }

    public func create(name: String, userNamespace: String?) async throws(CrispError) -> String {
        let pins = try await create(name: name, kinds: [.net], hostname: nil, userNamespace: userNamespace)
        return pins[.net] ?? path(for: name)
    }

    /// Creates namespaces of the given kinds in one helper run (so they belong together), with
    /// the UTS hostname when given, owned by the user namespace pinned at `userNamespace` when
    /// given; returns the pin of each.
    public func create(name: String, kinds: Set<Kind>, hostname: String?,
                       userNamespace: String? = nil) async throws(CrispError) -> [Kind: String] {
        var args = ["create", "--dir", pinDir, "--name", name]
        for k in Kind.allCases where kinds.contains(k) { args.append("--\(k.rawValue)") }
        if let hostname { args += ["--hostname", hostname] }
        if let userNamespace { args += ["--userns", userNamespace] }
        let out = try await runPinns(args)
        if out.status != 0 {
            let msg = String(decoding: out.stderr, as: UTF8.self).trimmingSpaces
            let code: CrispError.Code = msg.contains("File exists") ? .alreadyExists : .internal
            throw CrispError(code, "cannot create namespaces \(kinds.map(\.rawValue).sorted()) for \"\(name)\": \(msg) (crisp-pinns exit \(out.status))")
        }
        var pins: [Kind: String] = [:]
        for line in String(decoding: out.stdout, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: " ", maxSplits: 1)
            if f.count == 2, let k = Kind(rawValue: String(f[0])) { pins[k] = String(f[1]) }
        }
        return pins
    }

    public func remove(name: String) async throws(CrispError) {
        try await remove(name: name, kinds: [.net])
    }

    public func remove(name: String, kinds: Set<Kind>) async throws(CrispError) {
        var args = ["remove", "--dir", pinDir, "--name", name]
        for k in Kind.allCases where kinds.contains(k) { args.append("--\(k.rawValue)") }
        let out = try await runPinns(args)
        if out.status != 0 {
            let msg = String(decoding: out.stderr, as: UTF8.self).trimmingSpaces
            throw .internal("cannot remove namespaces of \"\(name)\": \(msg) (crisp-pinns exit \(out.status))")
        }
    }

    /// A user namespace with one uid and one gid mapping (`CONTAINER HOST LENGTH`), pinned at
    /// `pinDir/userns/NAME`; returns the pin.
    public func createUserNamespace(name: String, uidMap: String, gidMap: String) async throws(CrispError) -> String {
        let out = try await runPinns(["create", "--dir", pinDir, "--name", name, "--user", "--uid-map", uidMap, "--gid-map", gidMap])
        guard out.status == 0 else {
            let msg = String(decoding: out.stderr, as: UTF8.self).trimmingSpaces
            throw CrispError(msg.contains("File exists") ? .alreadyExists : .internal,
                             "cannot create the user namespace for \"\(name)\": \(msg) (crisp-pinns exit \(out.status))")
        }
        return path(.user, name)
    }

    /// Mounts each source directory again at its target with ids mapped through the user
    /// namespace at `userNamespace` (an idmapped mount, made by the helper).
    public func idmap(userNamespace: String, _ pairs: [(source: String, target: String)]) async throws(CrispError) {
        guard !pairs.isEmpty else { return }
        let out = try await runPinns(["idmap", "--userns", userNamespace] + pairs.flatMap { [$0.source, $0.target] })
        guard out.status == 0 else {
            throw .internal("cannot make idmapped mounts: \(String(decoding: out.stderr, as: UTF8.self).trimmingSpaces) (crisp-pinns exit \(out.status))")
        }
    }

    func runPinns(_ args: [String]) async throws(CrispError) -> Spawn.Output {
        guard access(pinnsPath, X_OK) == 0 else {
            throw .failedPrecondition("crisp-pinns helper \(pinnsPath) is not executable")
        }
        let out = try await Spawn.run(Spawn.Options(path: pinnsPath, arguments: args, environment: []), timeout: timeout)
        if out.timedOut { throw CrispError(.deadlineExceeded, "crisp-pinns \(args.first ?? "") did not finish within \(timeout)") }
        return out
    }
}
