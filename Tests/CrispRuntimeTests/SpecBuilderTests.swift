import CrispCore
import CrispOCI
@testable import CrispRuntime
import Testing

private func input(_ configure: (inout ContainerSpecInput) -> Void = { _ in }) -> ContainerSpecInput {
    var i = ContainerSpecInput(id: String(repeating: "a", count: 64), rootfs: "/rootfs")
    i.image.cmd = ["/bin/sh"]
    i.defaults.capabilities = ["CHOWN", "KILL", "NET_BIND_SERVICE"]
    configure(&i)
    return i
}

@Suite struct CommandTests {
    typealias I = ContainerSpecInput
    static let cases: [(entry: [String], cmd: [String], command: [String], args: [String], want: [String])] = [
        (["/ep"], ["c1"], [], [], ["/ep", "c1"]),
        (["/ep"], ["c1"], ["/cmd"], [], ["/cmd"]),            // command drops the image's Cmd
        (["/ep"], ["c1"], [], ["a1"], ["/ep", "a1"]),          // args replace Cmd, keep entrypoint
        (["/ep"], ["c1"], ["/cmd"], ["a1"], ["/cmd", "a1"]),
        ([], ["/bin/sh", "-c", "x"], [], [], ["/bin/sh", "-c", "x"]),
    ]

    @Test(arguments: cases.indices)
    func commandSemantics(_ i: Int) throws {
        let c = Self.cases[i]
        var image = I.ImageDefaults()
        image.entrypoint = c.entry
        image.cmd = c.cmd
        var request = I.ProcessRequest()
        request.command = c.command
        request.args = c.args
        #expect(try SpecBuilder.arguments(image: image, request: request) == c.want)
    }

    @Test func noCommandIsInvalid() {
        #expect(throws: CrispError.self) { try SpecBuilder.arguments(image: .init(), request: .init()) }
    }
}

@Suite struct ProcessTests {
    @Test func environmentMergesAndDefaults() throws {
        let spec = try SpecBuilder().build(input {
            $0.image.env = ["A=1", "B=2"]
            $0.process.env = [("B", "3"), ("C", "x=y")]
            $0.process.tty = true
            $0.sandbox.hostname = "pod1"
        }).spec
        #expect(spec.process?.env == ["A=1", "B=3", "C=x=y", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                      "TERM=xterm", "HOSTNAME=pod1"])
        #expect(spec.process?.terminal == true)
    }

    @Test func workingDirectory() throws {
        #expect(try SpecBuilder().build(input()).spec.process?.cwd == "/")
        #expect(try SpecBuilder().build(input { $0.image.workingDir = "/app" }).spec.process?.cwd == "/app")
        #expect(try SpecBuilder().build(input { $0.image.workingDir = "/app"; $0.process.workingDir = "/w" }).spec.process?.cwd == "/w")
        #expect(throws: CrispError.self) { try SpecBuilder().build(input { $0.process.workingDir = "rel" }) }
    }

    @Test func oomScoreAdjIsClampedAndReported() throws {
        let (spec, notes) = try SpecBuilder().build(input {
            $0.resources.oomScoreAdj = -998
            $0.defaults.minimumOOMScoreAdj = 0
        })
        #expect(spec.process?.oomScoreAdj == 0)
        #expect(notes.clampedOOMScoreAdj?.requested == -998)
        let (spec2, notes2) = try SpecBuilder().build(input { $0.resources.oomScoreAdj = 500; $0.defaults.minimumOOMScoreAdj = 0 })
        #expect(spec2.process?.oomScoreAdj == 500)
        #expect(notes2.clampedOOMScoreAdj == nil)
    }
}

@Suite struct CapabilityTests {
    static let cases: [(add: [String], drop: [String], privileged: Bool, want: [String])] = [
        ([], [], false, ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]),
        (["sys_admin"], ["KILL"], false, ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"]),
        (["CAP_NET_RAW"], ["ALL"], false, ["CAP_NET_RAW"]),
        ([], ["ALL"], false, []),
        (["ALL"], [], false, SpecBuilder.allCapabilities),
        ([], ["ALL"], true, SpecBuilder.allCapabilities),
    ]

    @Test(arguments: cases.indices)
    func addDropAndPrivileged(_ i: Int) throws {
        let c = Self.cases[i]
        let spec = try SpecBuilder().build(input {
            $0.security.addCapabilities = c.add
            $0.security.dropCapabilities = c.drop
            $0.security.privileged = c.privileged
        }).spec
        #expect(spec.process?.capabilities?.bounding == c.want)
        #expect(spec.process?.capabilities?.effective == c.want)
    }

    /// A daemon without CAP_SYS_RESOURCE (as root on this host) cannot hand it on: privileged,
    /// `ALL` and a named request are all cut to its bounding set, and the cut is reported.
    @Test(arguments: [(["ALL"], false), ([], true), (["SYS_RESOURCE", "NET_RAW"], false)])
    func requestsAreCutToTheDaemonsBoundingSet(add: [String], privileged: Bool) throws {
        let bounding = SpecBuilder.allCapabilities.filter { $0 != "CAP_SYS_RESOURCE" }
        let (spec, notes) = try SpecBuilder().build(input {
            $0.security.addCapabilities = add
            $0.security.privileged = privileged
            $0.defaults.boundingCapabilities = bounding
        })
        let effective = spec.process?.capabilities?.effective ?? []
        #expect(!effective.contains("CAP_SYS_RESOURCE"))
        #expect(effective.allSatisfy(bounding.contains))
        #expect(notes.unavailableCapabilities == ["CAP_SYS_RESOURCE"])
        if add.contains("NET_RAW") { #expect(effective.contains("CAP_NET_RAW")) }
        if privileged || add == ["ALL"] { #expect(effective == bounding) }
    }

    @Test func capabilityMaskNamesKernelBits() {
        #expect(LinuxCapabilities.names(inMask: "0000000000000021") == ["CAP_CHOWN", "CAP_KILL"])
        #expect(LinuxCapabilities.names(inMask: "\t000001fffeffffff")?.contains("CAP_SYS_RESOURCE") == false)
        #expect(LinuxCapabilities.names(inMask: "\t000001fffeffffff")?.count == LinuxCapabilities.all.count - 1)
        #expect(LinuxCapabilities.names(inMask: "zz") == nil)
    }

    @Test func propagatingMountsSetTheRootPropagation() throws {
        func rootPropagation(_ p: ContainerSpecInput.MountRequest.Propagation...) throws -> String? {
            try SpecBuilder().build(input { i in
                i.mounts = p.enumerated().map { .init(containerPath: "/m\($0.offset)", hostPath: "/h", propagation: $0.element) }
            }).spec.linux?.rootfsPropagation
        }
        #expect(try rootPropagation(.private) == nil)
        #expect(try rootPropagation(.private, .hostToContainer) == "rslave")
        #expect(try rootPropagation(.hostToContainer, .bidirectional) == "rshared")
    }

    @Test func unknownCapabilityIsInvalid() {
        #expect(throws: CrispError.self) { try SpecBuilder().build(input { $0.security.addCapabilities = ["FLY"] }) }
    }
}

@Suite struct RecursiveReadOnlyTests {
    static func mount(readonly: Bool = true, propagation: ContainerSpecInput.MountRequest.Propagation = .private) -> ContainerSpecInput.MountRequest {
        .init(containerPath: "/mnt", hostPath: "/h", readonly: readonly, propagation: propagation, recursiveReadOnly: true)
    }

    @Test func rroMountsGetTheOption() throws {
        let spec = try SpecBuilder().build(input { $0.mounts = [Self.mount()]; $0.defaults.recursiveReadOnlySupported = true }).spec
        let m = try #require(spec.mounts?.first { $0.destination == "/mnt" })
        #expect(m.options == ["rbind", "rprivate", "ro", "rro"])
    }

    @Test(arguments: [(false, ContainerSpecInput.MountRequest.Propagation.private, true),
                      (true, .hostToContainer, true), (true, .bidirectional, true), (true, .private, false)])
    func invalidRecursiveReadOnlyIsRefused(readonly: Bool, propagation: ContainerSpecInput.MountRequest.Propagation, supported: Bool) {
        #expect(throws: CrispError.self) {
            try SpecBuilder().build(input {
                $0.mounts = [Self.mount(readonly: readonly, propagation: propagation)]
                $0.defaults.recursiveReadOnlySupported = supported
            })
        }
    }

    @Test func featuresDocumentMountOptions() {
        let doc = Array(#"{"ociVersionMin":"1.0.0","mountOptions":["ro","rro","rbind"],"hooks":["prestart"]}"#.utf8)
        #expect(RuntimeHandler.mountOptions(inFeatures: doc) == ["ro", "rro", "rbind"])
        #expect(RuntimeHandler.mountOptions(inFeatures: Array("unknown command features".utf8)).isEmpty)
    }
}

@Suite struct UserTests {
    static let passwd = """
        root:x:0:0:root:/root:/bin/sh
        www:x:33:33:www:/var/www:/bin/sh
        alice:x:1000:1000::/home/alice:/bin/sh
        """
    static let group = """
        root:x:0:
        www:x:33:
        alice:x:1000:
        audio:x:29:alice,www
        video:x:44:alice
        """

    static let cases: [(name: String, configure: @Sendable (inout ContainerSpecInput) -> Void, uid: UInt32, gid: UInt32, extra: [UInt32])] = [
        ("default root", { _ in }, 0, 0, [0]),
        ("image user by name", { $0.image.user = "alice" }, 1000, 1000, [1000, 29, 44]),
        ("image uid:gid", { $0.image.user = "33:44" }, 33, 44, [44, 29]),
        ("image name:group", { $0.image.user = "www:video" }, 33, 44, [44, 29]),
        ("run_as_user wins", { $0.image.user = "alice"; $0.security.runAsUser = 33 }, 33, 33, [33, 29]),
        ("run_as_username", { $0.security.runAsUsername = "alice" }, 1000, 1000, [1000, 29, 44]),
        ("run_as_group and supplemental", { $0.security.runAsUser = 1000; $0.security.runAsGroup = 5; $0.security.supplementalGroups = [7, 29] }, 1000, 5, [5, 29, 44, 7]),
        ("unknown uid", { $0.security.runAsUser = 4242 }, 4242, 0, [0]),
        // Strict: the image's /etc/group memberships are left out (critest's SupplementalGroupsPolicy).
        ("strict", { $0.security.runAsUser = 1000; $0.security.supplementalGroups = [1234]; $0.security.strictSupplementalGroups = true }, 1000, 1000, [1000, 1234]),
        ("merge", { $0.security.runAsUser = 1000; $0.security.supplementalGroups = [1234] }, 1000, 1000, [1000, 29, 44, 1234]),
    ]

    @Test(arguments: cases.indices)
    func resolvesAgainstTheImage(_ i: Int) throws {
        let c = Self.cases[i]
        var inp = input { $0.passwd = Self.passwd; $0.group = Self.group }
        c.configure(&inp)
        let r = try UserResolution.resolve(inp)
        #expect(r.uid == c.uid, "\(c.name)")
        #expect(r.gid == c.gid, "\(c.name)")
        #expect(r.additionalGids == c.extra, "\(c.name)")
    }

    @Test func unknownNamesAreInvalid() {
        #expect(throws: CrispError.self) { try UserResolution.resolve(input { $0.passwd = Self.passwd; $0.security.runAsUsername = "bob" }) }
        #expect(throws: CrispError.self) { try UserResolution.resolve(input { $0.passwd = Self.passwd; $0.image.user = "bob" }) }
        #expect(throws: CrispError.self) { try UserResolution.resolve(input { $0.image.user = "0:nogroup" }) }
    }

    @Test func groupWithoutUserIsInvalid() throws {
        #expect(throws: CrispError.self) { try UserResolution.resolve(input { $0.image.user = "alice"; $0.security.runAsGroup = 5 }) }
        #expect(try UserResolution.resolve(input { $0.passwd = Self.passwd; $0.security.runAsUsername = "alice"; $0.security.runAsGroup = 5 }).gid == 5)
    }
}

@Suite struct LinuxTests {
    @Test func namespacesOfAPodWithItsOwnNetwork() throws {
        let spec = try SpecBuilder().build(input {
            $0.sandbox.networkNamespace = "/var/run/netns/x"
            $0.sandbox.ipcNamespace = "/proc/1/ns/ipc"
            $0.sandbox.utsNamespace = "/proc/1/ns/uts"
            $0.sandbox.pidNamespace = "/proc/1/ns/pid"
            $0.sandbox.hostname = "h"
        }).spec
        let ns = spec.linux?.namespaces ?? []
        #expect(ns.contains(.init(type: "network", path: "/var/run/netns/x")))
        #expect(ns.contains(.init(type: "pid", path: "/proc/1/ns/pid")))
        #expect(ns.contains(.init(type: "mount")))
        #expect(spec.hostname == "h")
    }

    @Test func hostNamespacesAreLeftOut() throws {
        let spec = try SpecBuilder().build(input {
            $0.sandbox.hostNetwork = true
            $0.sandbox.hostPID = true
            $0.sandbox.hostIPC = true
            $0.sandbox.hostname = "h"
        }).spec
        #expect(spec.linux?.namespaces?.map(\.type) == ["mount"])
        #expect(spec.hostname == nil)
    }

    @Test func maskedPathsAndPrivileged() throws {
        let normal = try SpecBuilder().build(input()).spec
        #expect(normal.linux?.maskedPaths == SpecBuilder.defaultMaskedPaths)
        #expect(normal.linux?.readonlyPaths == SpecBuilder.defaultReadonlyPaths)
        #expect(normal.mounts?.first { $0.destination == "/sys" }?.options?.contains("ro") == true)
        let privileged = try SpecBuilder().build(input { $0.security.privileged = true }).spec
        #expect(privileged.linux?.maskedPaths == nil)
        #expect(privileged.linux?.readonlyPaths == nil)
        #expect(privileged.mounts?.first { $0.destination == "/sys" }?.options?.contains("rw") == true)
        let custom = try SpecBuilder().build(input { $0.security.maskedPaths = ["/x"] }).spec
        #expect(custom.linux?.maskedPaths == ["/x"])
    }

    @Test func resourcesAndCgroupPath() throws {
        let spec = try SpecBuilder().build(input {
            $0.resources.cpuShares = 512
            $0.resources.cpuQuota = 50000
            $0.resources.cpuPeriod = 100000
            $0.resources.memoryLimit = 20 << 20
            $0.sandbox.cgroupParent = "/kubepods/pod1"
            $0.defaults.pidsLimit = 1024
        }).spec
        let r = try #require(spec.linux?.resources)
        #expect(r.cpu?.shares == 512)
        #expect(r.cpu?.quota == 50000)
        #expect(r.memory?.limit == 20 << 20)
        #expect(r.memory?.swap == 20 << 20)
        #expect(r.pids?.limit == 1024)
        #expect(spec.linux?.cgroupsPath == "/kubepods/pod1/crisp-" + String(repeating: "a", count: 64))
        #expect(SpecBuilder.cgroupsPath(manager: .systemd, parent: "kubepods.slice", id: "abc") == "kubepods.slice:crisp:abc")
    }

    @Test func mountsFromTheRequestAndTheSandbox() throws {
        let spec = try SpecBuilder().build(input {
            $0.sandbox.hostsFile = "/run/p/hosts"
            $0.sandbox.resolvConf = "/run/p/resolv.conf"
            $0.sandbox.shmPath = "/run/p/shm"
            $0.mounts = [.init(containerPath: "/data", hostPath: "/srv/data", readonly: true, propagation: .hostToContainer),
                         .init(containerPath: "/etc/hosts", hostPath: "/srv/myhosts")]
            $0.security.readonlyRootfs = true
        }).spec
        let mounts = spec.mounts ?? []
        #expect(mounts.first { $0.destination == "/data" }?.options == ["rbind", "rslave", "ro"])
        #expect(mounts.filter { $0.destination == "/etc/hosts" }.map(\.source) == ["/srv/myhosts"])
        #expect(mounts.first { $0.destination == "/etc/resolv.conf" }?.source == "/run/p/resolv.conf")
        #expect(mounts.first { $0.destination == "/dev/shm" }?.source == "/run/p/shm")
        #expect(spec.root?.readonly == true)
    }
}
