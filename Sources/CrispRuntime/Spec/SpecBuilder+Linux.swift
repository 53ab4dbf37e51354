public import CrispCore
public import CrispOCI
import CrispSecurity

extension SpecBuilder {
    /// CRI-O's defaults: kernel interfaces a container has no business reading or writing.
    public static let defaultMaskedPaths = [
        "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
        "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
    ]
    public static let defaultReadonlyPaths = [
        "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
    ]

    func mounts(_ input: ContainerSpecInput) -> [RuntimeSpec.Mount] {
        typealias M = RuntimeSpec.Mount
        let privileged = input.security.privileged
        var out: [M] = [
            M(destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"]),
            M(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            M(destination: "/dev/pts", type: "devpts", source: "devpts",
              options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
            M(destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
            M(destination: "/sys", type: "sysfs", source: "sysfs",
              options: ["nosuid", "noexec", "nodev", privileged ? "rw" : "ro"]),
            M(destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup",
              options: ["nosuid", "noexec", "nodev", "relatime", privileged ? "rw" : "ro"]),
        ]
        let sb = input.sandbox
        if let shm = sb.shmPath {
            out.append(M(destination: "/dev/shm", type: "bind", source: shm, options: ["rbind", "rprivate", "rw"]))
        } else {
            out.append(M(destination: "/dev/shm", type: "tmpfs", source: "shm",
                         options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]))
        }
        let userPaths = Set(input.mounts.map(\.containerPath))
        for (dest, source) in [("/etc/hostname", sb.hostnameFile), ("/etc/hosts", sb.hostsFile), ("/etc/resolv.conf", sb.resolvConf)] {
            guard let source, !userPaths.contains(dest) else { continue }
            out.append(M(destination: dest, type: "bind", source: source,
                         options: ["rbind", "rprivate", input.security.readonlyRootfs ? "ro" : "rw"]))
        }
        for m in input.mounts {
            let propagation = switch m.propagation {
            case .private: "rprivate"
            case .hostToContainer: "rslave"
            case .bidirectional: "rshared"
            }
            out.append(M(destination: m.containerPath, type: "bind", source: m.hostPath,
                         options: ["rbind", propagation, m.readonly ? "ro" : "rw"] + (m.recursiveReadOnly ? ["rro"] : [])))
        }
        return out
    }

    func linux(_ input: ContainerSpecInput, notes: inout Notes) -> RuntimeSpec.Linux {
        var l = RuntimeSpec.Linux()
        let sb = input.sandbox
        var ns: [RuntimeSpec.Namespace] = [RuntimeSpec.Namespace(type: "mount")]
        if !sb.hostNetwork { ns.append(RuntimeSpec.Namespace(type: "network", path: sb.networkNamespace)) }
        if !sb.hostIPC { ns.append(RuntimeSpec.Namespace(type: "ipc", path: sb.ipcNamespace)) }
        if !sb.hostNetwork { ns.append(RuntimeSpec.Namespace(type: "uts", path: sb.utsNamespace)) }
        if !sb.hostPID { ns.append(RuntimeSpec.Namespace(type: "pid", path: sb.pidNamespace)) }
        if let userns = sb.userNamespace {
            ns.append(RuntimeSpec.Namespace(type: "user", path: userns.path))
            l.uidMappings = [RuntimeSpec.IDMapping(containerID: userns.uid.containerID, hostID: userns.uid.hostID, size: userns.uid.length)]
            l.gidMappings = [RuntimeSpec.IDMapping(containerID: userns.gid.containerID, hostID: userns.gid.hostID, size: userns.gid.length)]
        }
        l.namespaces = ns
        l.cgroupsPath = Self.cgroupsPath(manager: input.defaults.cgroupManager, parent: sb.cgroupParent, id: input.id)
        var resources = resources(input)
        if let controllers = input.defaults.cgroupControllers {
            notes.leftOutResources = controllers.restrict(&resources)
        }
        l.resources = resources
        if !input.devices.isEmpty {
            l.devices = input.devices.map {
                RuntimeSpec.Device(type: $0.type, path: $0.containerPath, major: $0.major, minor: $0.minor,
                                   fileMode: $0.fileMode, uid: 0, gid: 0)
            }
        }
        if !sb.sysctls.isEmpty { l.sysctl = sb.sysctls }
        // A bind mount's propagation only reaches the host (or from it) when the container's root
        // mount propagates too, as CRI-O sets it.
        if input.mounts.contains(where: { $0.propagation == .bidirectional }) {
            l.rootfsPropagation = "rshared"
        } else if input.mounts.contains(where: { $0.propagation == .hostToContainer }) {
            l.rootfsPropagation = "rslave"
        }
        if input.security.privileged {
            l.maskedPaths = nil
            l.readonlyPaths = nil
        } else {
            l.maskedPaths = input.security.maskedPaths.isEmpty ? Self.defaultMaskedPaths : input.security.maskedPaths
            l.readonlyPaths = input.security.readonlyPaths.isEmpty ? Self.defaultReadonlyPaths : input.security.readonlyPaths
        }
        return l
    }

    /// cgroupfs: `PARENT/crisp-ID`; systemd: `SLICE:crisp:ID` (the form runc and crun expect).
    public static func cgroupsPath(manager: CgroupManager, parent: String, id: String) -> String {
        if manager == .systemd {
            let slice = parent.isEmpty ? "system.slice" : parent
            return "\(slice):crisp:\(id)"
        }
        let base = parent.isEmpty ? "/crisp" : (parent.hasPrefix("/") ? parent : "/" + parent)
        return "\(base)/crisp-\(id)"
    }

    /// The CPU and memory limits of `r` (zero and empty fields are left unset), for a new
    /// container and for UpdateContainerResources alike. A quota of -1 means no limit.
    public static func cpuAndMemory(_ r: ContainerSpecInput.ResourceRequest) -> (cpu: RuntimeSpec.CPU?, memory: RuntimeSpec.Memory?) {
        var cpu = RuntimeSpec.CPU()
        if r.cpuShares > 0 { cpu.shares = r.cpuShares }
        if r.cpuQuota != 0 { cpu.quota = r.cpuQuota }
        if r.cpuPeriod > 0 { cpu.period = r.cpuPeriod }
        if !r.cpusetCPUs.isEmpty { cpu.cpus = r.cpusetCPUs }
        if !r.cpusetMems.isEmpty { cpu.mems = r.cpusetMems }
        var memory: RuntimeSpec.Memory?
        if r.memoryLimit > 0 {
            var m = RuntimeSpec.Memory()
            m.limit = r.memoryLimit
            // Without an explicit swap limit, no swap beyond the memory limit (the kubelet's default).
            m.swap = r.memorySwapLimit > 0 ? r.memorySwapLimit : r.memoryLimit
            memory = m
        }
        return (cpu == RuntimeSpec.CPU() ? nil : cpu, memory)
    }

    func resources(_ input: ContainerSpecInput) -> RuntimeSpec.Resources {
        let r = input.resources
        var out = RuntimeSpec.Resources()
        // Deny every device, then allow the ones the container was given plus the usual few.
        var devices = [RuntimeSpec.DeviceCgroup(allow: false, access: "rwm")]
        if input.security.privileged {
            devices = [RuntimeSpec.DeviceCgroup(allow: true, access: "rwm")]
        } else {
            for d in input.devices {
                devices.append(RuntimeSpec.DeviceCgroup(allow: true, type: d.type, major: d.major, minor: d.minor,
                                                        access: d.permissions.isEmpty ? "rwm" : d.permissions))
            }
        }
        out.devices = devices
        (out.cpu, out.memory) = Self.cpuAndMemory(r)
        if input.defaults.pidsLimit > 0 { out.pids = RuntimeSpec.Pids(limit: input.defaults.pidsLimit) }
        if !r.hugepageLimits.isEmpty {
            out.hugepageLimits = r.hugepageLimits.map { RuntimeSpec.HugepageLimit(pageSize: $0.pageSize, limit: $0.limit) }
        }
        if !r.unified.isEmpty { out.unified = r.unified }
        return out
    }
}
