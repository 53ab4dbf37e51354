import CrispCore
import CrispOCI
@testable import CrispRuntime
import Testing

@Suite struct PodSysctlsTests {
    @Test(arguments: [
        ("net/ipv4/ip_forward", "net.ipv4.ip_forward"),
        ("net.ipv4.ip_forward", "net.ipv4.ip_forward"),
        // Kubernetes' rule: a dot inside a name given with slashes survives as a slash.
        ("net/ipv4/conf/eth0.100/rp_filter", "net.ipv4.conf.eth0/100.rp_filter"),
        ("net.ipv4.conf.eth0/100.rp_filter", "net.ipv4.conf.eth0/100.rp_filter"),
        ("kernel/shm_rmid_forced", "kernel.shm_rmid_forced"),
        ("kernel.sem", "kernel.sem"),
    ])
    func slashesBecomeDots(_ key: String, _ want: String) {
        #expect(PodSysctls.normalize(key) == want)
    }

    /// (key, host network, host IPC, allowed)
    static let cases: [(String, Bool, Bool, Bool)] = [
        ("kernel.shm_rmid_forced", false, false, true),
        ("kernel.shmmax", false, false, true),
        ("kernel.shmall", false, false, true),
        ("kernel.shmmni", false, false, true),
        ("kernel.msgmax", false, false, true),
        ("kernel.msgmnb", false, false, true),
        ("kernel.msgmni", false, false, true),
        ("kernel.sem", false, false, true),
        ("fs.mqueue.msg_max", false, false, true),
        ("kernel.shm_rmid_forced", false, true, false),   // host IPC
        ("fs.mqueue.msg_max", true, true, false),
        ("kernel.shm_rmid_forced", true, false, true),    // host network, own IPC
        ("net.ipv4.ip_unprivileged_port_start", false, false, true),
        ("net.ipv4.ip_unprivileged_port_start", true, false, false),
        ("net.core.somaxconn", false, true, true),
        ("kernel.panic", false, false, false),
        ("kernel.hostname", false, false, false),
        ("vm.overcommit_memory", false, false, false),
        ("fs.file-max", false, false, false),
        ("kernel.shm_next_id", false, false, false),      // not in runc's list: runc would refuse it
    ]

    @Test(arguments: cases.indices)
    func onlyNamespacedSysctlsOfNamespacesThePodOwns(_ i: Int) {
        let (key, hostNetwork, hostIPC, allowed) = Self.cases[i]
        let result = Result { () throws(CrispError) in
            try PodSysctls.effective(pod: [key: "1"], defaults: [:], hostNetwork: hostNetwork, hostIPC: hostIPC)
        }
        switch result {
        case .success(let r):
            #expect(allowed, "\(key) accepted")
            #expect(r.sysctls == [key: "1"])
        case .failure(let e):
            #expect(!allowed, "\(key) refused: \(e)")
            #expect(e.code == .invalidArgument)
            #expect(e.message.contains("\"\(key)\""), "the error names the key: \(e.message)")
        }
    }

    @Test func slashedKeysAreValidatedAndAppliedDotted() throws {
        let r = try PodSysctls.effective(pod: ["net/ipv4/ip_unprivileged_port_start": "1000"], defaults: [:],
                                         hostNetwork: false, hostIPC: false)
        #expect(r.sysctls == ["net.ipv4.ip_unprivileged_port_start": "1000"])
        #expect(throws: CrispError.self) {
            try PodSysctls.effective(pod: ["kernel/panic": "1"], defaults: [:], hostNetwork: false, hostIPC: false)
        }
    }

    /// Defaults apply to every pod where they fit; the pod's own win; a default that does not
    /// fit (net.* in a host-network pod, or one that is not namespaced) is skipped, not fatal.
    @Test func defaultsMergeUnderThePodsOwn() throws {
        let defaults = ["net.ipv4.ping_group_range": "0 2147483647", "kernel.shmmni": "4096", "kernel.panic": "10",
                        "net/ipv4/tcp_syncookies": "1"]
        let own = try PodSysctls.effective(pod: ["kernel.shmmni": "8192"], defaults: defaults, hostNetwork: false, hostIPC: false)
        #expect(own.sysctls == ["net.ipv4.ping_group_range": "0 2147483647", "kernel.shmmni": "8192", "net.ipv4.tcp_syncookies": "1"])
        #expect(own.skippedDefaults == ["kernel.panic"])
        let host = try PodSysctls.effective(pod: [:], defaults: defaults, hostNetwork: true, hostIPC: false)
        #expect(host.sysctls == ["kernel.shmmni": "4096"])
        #expect(host.skippedDefaults == ["kernel.panic", "net.ipv4.ping_group_range", "net.ipv4.tcp_syncookies"])
    }

    @Test func everyContainerCarriesThePodsSysctls() throws {
        var i = ContainerSpecInput(id: String(repeating: "c", count: 64), rootfs: "/rootfs")
        i.image.cmd = ["/bin/sh"]
        i.sandbox.sysctls = ["kernel.shm_rmid_forced": "1", "net.ipv4.ip_unprivileged_port_start": "1000"]
        #expect(try SpecBuilder().build(i).spec.linux?.sysctl == i.sandbox.sysctls)
        i.sandbox.sysctls = [:]
        #expect(try SpecBuilder().build(i).spec.linux?.sysctl == nil)
    }
}
