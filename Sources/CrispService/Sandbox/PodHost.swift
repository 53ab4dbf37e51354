public import CrispCore
public import CrispNetwork
import CrispOS

/// What pods need from the host besides the runtime and CNI: a /dev/shm of their own and pinned
/// IPC, UTS and user namespaces. `SystemPodHost` does it with mounts and crisp-pinns; tests
/// use a fake, so the pod service runs without root.
public protocol PodHost: Sendable {
    /// Mounts a private tmpfs (nosuid, nodev, noexec, 64 MiB) at `path`, which exists.
    func mountShm(at path: String) throws(CrispError)
    /// Unmounts the pod's /dev/shm; one that is not mounted is not an error.
    func unmountShm(at path: String) throws(CrispError)
    /// Whether pins can be made at all (a helper is configured).
    var canPinNamespaces: Bool { get }
    /// New namespaces of `kinds`, pinned under `name`; their paths by kind.
    func pinNamespaces(name: String, kinds: Set<PinnsNamespaces.Kind>, hostname: String?,
                       userNamespace: String?) async throws(CrispError) -> [PinnsNamespaces.Kind: String]
    /// A user namespace with these mappings, pinned under `name`.
    func pinUserNamespace(name: String, uidMap: String, gidMap: String) async throws(CrispError) -> String
    /// Removes the pins; pins already gone are not an error.
    func unpinNamespaces(name: String, kinds: Set<PinnsNamespaces.Kind>) async throws(CrispError)
    /// Whether `path` still pins a namespace (after a reboot it is a plain file, or gone).
    func isPinnedNamespace(_ path: String) -> Bool
}

/// The real host: tmpfs mounts and crisp-pinns (nil when namespaces cannot be pinned).
public struct SystemPodHost: PodHost {
    public let pinns: PinnsNamespaces?

    public init(pinns: PinnsNamespaces?) { self.pinns = pinns }

    public func mountShm(at path: String) throws(CrispError) {
        do { try Mounts.mountSecureTmpfs(at: path, options: "mode=1777,size=65536k") } catch {
            throw CrispError(.internal, "cannot mount the pod's /dev/shm at \(path): \(error)")
        }
    }

    public func unmountShm(at path: String) throws(CrispError) {
        do { try Mounts.unmount(path, detach: true) } catch {
            guard (try? Mounts.isMountPoint(path)) == true else { return }
            throw CrispError(.internal, "cannot unmount \(path): \(error)")
        }
    }

    public var canPinNamespaces: Bool { pinns != nil }

    func helper() throws(CrispError) -> PinnsNamespaces {
        guard let pinns else { throw .failedPrecondition("no namespace pinning helper (crisp-pinns) is configured") }
        return pinns
    }

    public func pinNamespaces(name: String, kinds: Set<PinnsNamespaces.Kind>, hostname: String?,
                              userNamespace: String?) async throws(CrispError) -> [PinnsNamespaces.Kind: String] {
        try await helper().create(name: name, kinds: kinds, hostname: hostname, userNamespace: userNamespace)
    }

    public func pinUserNamespace(name: String, uidMap: String, gidMap: String) async throws(CrispError) -> String {
        try await helper().createUserNamespace(name: name, uidMap: uidMap, gidMap: gidMap)
    }

    public func unpinNamespaces(name: String, kinds: Set<PinnsNamespaces.Kind>) async throws(CrispError) {
        try await pinns?.remove(name: name, kinds: kinds)
    }

    public func isPinnedNamespace(_ path: String) -> Bool { FileOperations.isNamespacePin(path) }
}
