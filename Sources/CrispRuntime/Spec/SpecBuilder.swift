public import CrispCore
public import CrispOCI
import CrispSecurity

/// Turns a `ContainerSpecInput` into an OCI runtime spec. Pure: it reads no file and makes no
/// system call, so every decision is unit-tested without root.
public struct SpecBuilder: Sendable {
    public init() {}

    /// Things the caller should log: requests accepted but not (yet) enforced, values clamped.
    public struct Notes: Sendable, Equatable {
        public var clampedOOMScoreAdj: (requested: Int, applied: Int)?
        /// Capabilities asked for (privileged, `ALL`, or by name) that the daemon's own bounding
        /// set lacks; left out, since no runtime can grant them.
        public var unavailableCapabilities: [String] = []
        /// Limits the host's cgroup hierarchy cannot take, left out of `linux.resources`.
        public var leftOutResources: [CgroupControllers.Omission] = []
        public static func == (a: Notes, b: Notes) -> Bool {
            a.clampedOOMScoreAdj?.requested == b.clampedOOMScoreAdj?.requested
                && a.clampedOOMScoreAdj?.applied == b.clampedOOMScoreAdj?.applied
                && a.unavailableCapabilities == b.unavailableCapabilities
                && a.leftOutResources == b.leftOutResources
        }
    }

    public func build(_ input: ContainerSpecInput) throws(CrispError) -> (spec: RuntimeSpec, notes: Notes) {
        var notes = Notes()
        try Self.checkRecursiveReadOnly(input)
        var spec = RuntimeSpec()
        spec.root = RuntimeSpec.Root(path: input.rootfs, readonly: input.security.readonlyRootfs ? true : nil)
        spec.hostname = input.sandbox.hostNetwork || input.sandbox.hostname.isEmpty ? nil : input.sandbox.hostname
        spec.process = try process(input, notes: &notes)
        spec.mounts = mounts(input)
        spec.annotations = input.annotations.isEmpty ? nil : input.annotations
        spec.linux = linux(input, notes: &notes)
        if case .profile(_, let profile) = input.security.seccomp, !input.security.privileged {
            let caps = Set(spec.process?.capabilities?.bounding ?? [])
            spec.linux?.seccomp = SeccompCompiler.compile(profile, capabilities: caps, host: input.defaults.securityHost)
        }
        if case .profile(let name) = input.security.appArmor, !input.security.privileged {
            spec.process?.apparmorProfile = name
        }
        if let labels = input.security.selinux {
            spec.process?.selinuxLabel = labels.process
            spec.linux?.mountLabel = labels.mount
        }
        return (spec, notes)
    }

    /// KEP-3857's rules: a recursive read-only mount must be read-only and private, and the
    /// runtime must know the `rro` option (`runc features`); otherwise the request is refused
    /// rather than given a mount whose submounts stay writable.
    static func checkRecursiveReadOnly(_ input: ContainerSpecInput) throws(CrispError) {
        for m in input.mounts where m.recursiveReadOnly {
            guard m.readonly else {
                throw .invalidArgument("mount \(m.containerPath): recursive_read_only needs readonly as well")
            }
            guard m.propagation == .private else {
                throw .invalidArgument("mount \(m.containerPath): recursive_read_only needs private propagation")
            }
            guard input.defaults.recursiveReadOnlySupported else {
                throw .invalidArgument("mount \(m.containerPath): the runtime handler does not support recursive read-only mounts")
            }
        }
    }

    // MARK: process

    func process(_ input: ContainerSpecInput, notes: inout Notes) throws(CrispError) -> RuntimeSpec.Process {
        var p = RuntimeSpec.Process()
        p.args = try Self.arguments(image: input.image, request: input.process)
        p.env = Self.environment(input)
        p.cwd = !input.process.workingDir.isEmpty ? input.process.workingDir
            : (!input.image.workingDir.isEmpty ? input.image.workingDir : "/")
        guard p.cwd.hasPrefix("/") else { throw .invalidArgument("working directory \"\(p.cwd)\" must be absolute") }
        p.terminal = input.process.tty ? true : nil
        let user = try UserResolution.resolve(input)
        p.user = RuntimeSpec.User(uid: user.uid, gid: user.gid,
                                  additionalGids: user.additionalGids.isEmpty ? nil : user.additionalGids)
        var caps = try Self.capabilities(input)
        var ambient: [String] = []
        for c in input.security.addAmbientCapabilities {
            let n = try Self.normalize(c)
            if !ambient.contains(n) { ambient.append(n) }
            if !caps.contains(n) { caps.append(n) }
        }
        if let bounding = input.defaults.boundingCapabilities {
            let allowed = Set(bounding)
            notes.unavailableCapabilities = caps.filter { !allowed.contains($0) }
            caps.removeAll { !allowed.contains($0) }
            ambient.removeAll { !allowed.contains($0) }
        }
        p.capabilities = RuntimeSpec.Capabilities(all: caps)
        if !ambient.isEmpty {
            // The kernel keeps an ambient capability only while it is permitted and inheritable.
            p.capabilities?.inheritable = ambient
            p.capabilities?.ambient = ambient
        }
        p.noNewPrivileges = input.security.noNewPrivileges && !input.security.privileged ? true : nil
        let requested = input.resources.oomScoreAdj
        let applied = max(requested, input.defaults.minimumOOMScoreAdj)
        if applied != requested { notes.clampedOOMScoreAdj = (requested, applied) }
        p.oomScoreAdj = applied
        return p
    }

    /// Kubernetes semantics: `command` replaces the entrypoint and drops the image's Cmd; `args`
    /// alone replaces Cmd and keeps the entrypoint.
    static func arguments(image: ContainerSpecInput.ImageDefaults, request: ContainerSpecInput.ProcessRequest) throws(CrispError) -> [String] {
        let args: [String]
        if !request.command.isEmpty {
            args = request.command + request.args
        } else if !request.args.isEmpty {
            args = image.entrypoint + request.args
        } else {
            args = image.entrypoint + image.cmd
        }
        guard let first = args.first, !first.isEmpty else {
            throw .invalidArgument("no command: the container config and the image give neither command nor entrypoint")
        }
        return args
    }

    static let defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The image's environment, then the request's (same name wins), PATH when missing, HOSTNAME.
    static func environment(_ input: ContainerSpecInput) -> [String] {
        var order: [String] = []
        var values: [String: String] = [:]
        func set(_ key: String, _ value: String) {
            if values[key] == nil { order.append(key) }
            values[key] = value
        }
        for entry in input.image.env {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            set(String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
        for (k, v) in input.process.env { set(k, v) }
        if values["PATH"] == nil { set("PATH", String(defaultPath.dropFirst(5))) }
        if input.process.tty && values["TERM"] == nil { set("TERM", "xterm") }
        if !input.sandbox.hostname.isEmpty && values["HOSTNAME"] == nil { set("HOSTNAME", input.sandbox.hostname) }
        return order.map { "\($0)=\(values[$0]!)" }
    }

    // MARK: capabilities

    /// Every capability, in CAP_ form.
    public static let allCapabilities: [String] = LinuxCapabilities.all.map { "CAP_" + $0 }

    static func normalize(_ cap: String) throws(CrispError) -> String {
        let upper = cap.uppercased()
        let name = upper.hasPrefix("CAP_") ? upper : "CAP_" + upper
        guard allCapabilities.contains(name) else { throw .invalidArgument("unknown capability \"\(cap)\"") }
        return name
    }

    /// Defaults, then drops, then adds (CRI-O's order); `ALL` in either list means every capability.
    static func capabilities(_ input: ContainerSpecInput) throws(CrispError) -> [String] {
        if input.security.privileged { return allCapabilities }
        var set: [String] = []
        for c in input.defaults.capabilities { set.append(try normalize(c)) }
        let drop = input.security.dropCapabilities, add = input.security.addCapabilities
        if drop.contains(where: { $0.uppercased() == "ALL" }) {
            set = []
        } else {
            var dropped = Set<String>()
            for c in drop { dropped.insert(try normalize(c)) }
            set.removeAll { dropped.contains($0) }
        }
        if add.contains(where: { $0.uppercased() == "ALL" }) {
            set = allCapabilities
        } else {
            for c in add {
                let n = try normalize(c)
                if !set.contains(n) { set.append(n) }
            }
        }
        return set
    }
}
