@testable import CrispRuntime
import Foundation
import Testing

/// mountinfo of three kinds of host, as the kernel prints them; the tests read no real file
/// (except the last, which checks this machine agrees with itself).
enum MountinfoFixtures {
    /// CentOS 7 style: cgroup v1 only, cpu and cpuacct (and net_cls, net_prio) co-mounted.
    static let legacy = """
        18 41 0:17 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw
        19 41 0:3 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw
        24 18 0:20 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:7 - tmpfs tmpfs ro,mode=755
        25 24 0:21 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:8 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
        27 24 0:23 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
        28 24 0:24 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,memory
        29 24 0:25 / /sys/fs/cgroup/hugetlb rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,hugetlb
        30 24 0:26 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,pids
        31 24 0:27 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,blkio
        32 24 0:28 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpuset,clone_children
        33 24 0:29 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,net_cls,net_prio
        34 24 0:30 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,devices
        35 24 0:31 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,freezer
        36 24 0:32 / /sys/fs/cgroup/perf_event rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,perf_event
        41 1 253:0 / / rw,relatime shared:1 - xfs /dev/mapper/centos-root rw,attr2,inode64,noquota
        """

    /// This project's host (Debian 12, booted hybrid): v1 hierarchies for every controller but
    /// hugetlb, which only the cgroup2 mount at /sys/fs/cgroup/unified has.
    static let hybrid = """
        22 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw
        23 22 0:20 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
        34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
        37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
        38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
        39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
        40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
        """

    /// Debian 12 / Fedora default: the unified hierarchy at /sys/fs/cgroup.
    static let unified = """
        21 26 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
        22 26 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
        26 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
        25 21 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:8 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
        30 21 0:26 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:9 - bpf bpf rw,mode=700
        """
    static let unifiedControllers = "cpuset cpu io memory hugetlb pids rdma misc\n"
}

@Suite struct CgroupHostTests {
    typealias F = MountinfoFixtures

    /// A fake filesystem for `detect(read:list:)`.
    static func detect(_ files: [String: String], hugePages: [String]? = ["hugepages-2048kB", "hugepages-1048576kB"]) -> CgroupHost {
        CgroupHost.detect(read: { files[$0] }, list: { $0 == "/sys/kernel/mm/hugepages" ? hugePages : nil })
    }

    @Test func legacyHostHasEveryV1ControllerAndNoNamedHierarchy() {
        let mounts = CgroupMounts(mountinfo: F.legacy)
        #expect(mounts.unified == nil)
        #expect(mounts.v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct" && mounts.v1["cpu"] == "/sys/fs/cgroup/cpu,cpuacct")
        #expect(mounts.v1["systemd"] == nil && mounts.v1["name=systemd"] == nil && mounts.v1["clone_children"] == nil)
        let host = Self.detect(["/proc/self/mountinfo": F.legacy,
                                "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes": "9223372036854771712\n"])
        #expect(host.mode == .legacy)
        #expect(host.controllers.version == .v1)
        #expect(host.controllers.names == ["cpu", "cpuacct", "memory", "hugetlb", "pids", "blkio", "cpuset", "net_cls",
                                           "net_prio", "devices", "freezer", "perf_event"])
        #expect(host.controllers.swap)
        #expect(host.controllers.hugePageSizes == ["2MB", "1GB"])
    }

    /// The unified mount lists hugetlb, but runc sets limits only in the v1 hierarchies.
    @Test func hybridHostTakesLimitsOnlyInV1() {
        let host = Self.detect(["/proc/self/mountinfo": F.hybrid, "/sys/fs/cgroup/unified/cgroup.controllers": "hugetlb\n"])
        #expect(host.mode == .hybrid)
        #expect(host.unifiedMountPoint == "/sys/fs/cgroup/unified")
        #expect(host.controllers.version == .v1)
        #expect(!host.controllers.names.contains("hugetlb"))
        #expect(host.controllers.names == ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"])
        #expect(!host.controllers.swap, "no memory.memsw file in the fake: swap accounting off")
    }

    @Test func unifiedHostReadsItsControllersAndProbesSwapInItsOwnCgroup() {
        let files = ["/proc/self/mountinfo": F.unified, "/sys/fs/cgroup/cgroup.controllers": F.unifiedControllers,
                     "/proc/self/cgroup": "0::/system.slice/crispd.service\n",
                     "/sys/fs/cgroup/system.slice/crispd.service/memory.swap.max": "max\n"]
        let host = Self.detect(files)
        #expect(host.mode == .unified)
        #expect(host.controllers.version == .v2)
        #expect(host.controllers.names == ["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"])
        #expect(host.controllers.swap)
        #expect(host.v1MountPoints.isEmpty)
        var noSwap = files
        noSwap["/sys/fs/cgroup/system.slice/crispd.service/memory.swap.max"] = nil
        #expect(!Self.detect(noSwap).controllers.swap)
        // In the root cgroup (no memory files of its own) swap cannot be shown to work.
        #expect(CgroupHost.swapProbePath(mounts: CgroupMounts(mountinfo: F.unified), ownCgroup: "0::/\n")
                == "/sys/fs/cgroup/memory.swap.max")
    }

    /// A delegated v2 host whose root lacks a controller: it is not offered.
    @Test func unifiedHostWithoutHugetlb() {
        let host = Self.detect(["/proc/self/mountinfo": F.unified, "/sys/fs/cgroup/cgroup.controllers": "cpu memory pids\n"],
                               hugePages: nil)
        #expect(host.controllers.names == ["cpu", "memory", "pids"])
        #expect(host.controllers.hugePageSizes == [], "no /sys/kernel/mm/hugepages: no page size")
    }

    @Test func noCgroupMountsAtAll() {
        let host = Self.detect(["/proc/self/mountinfo": "22 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw\n"])
        #expect(host.mode == .legacy)
        #expect(host.controllers.names.isEmpty)
    }

    /// A second view of a hierarchy (a bind mount elsewhere) does not replace the one under
    /// /sys/fs/cgroup; a cgroup2 mount at /sys/fs/cgroup wins over one elsewhere.
    @Test func mountsUnderTheCgroupRootArePreferred() {
        let text = """
            50 22 0:32 /kubepods /var/lib/x/memory rw,relatime - cgroup cgroup rw,memory
            35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
            60 22 0:32 / /mnt/other rw,relatime - cgroup cgroup rw,memory
            61 22 0:40 / /mnt/v2 rw,relatime - cgroup2 cgroup2 rw
            62 22 0:40 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw
            63 22 0:40 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
            """
        let mounts = CgroupMounts(mountinfo: text)
        #expect(mounts.v1["memory"] == "/sys/fs/cgroup/memory")
        #expect(mounts.unified == "/sys/fs/cgroup")
    }

    @Test func escapedMountPointsAndShortLines() {
        let mounts = CgroupMounts(mountinfo: """
            70 22 0:50 / /srv/my\\040cgroups/pids rw - cgroup cgroup rw,pids
            garbage line
            71 22 0:51 / /x rw -
            """)
        #expect(mounts.v1 == ["pids": "/srv/my cgroups/pids"])
    }

    @Test(arguments: [("hugepages-2048kB", "2MB"), ("hugepages-1048576kB", "1GB"), ("hugepages-64kB", "64KB"),
                      ("hugepages-32768kB", "32MB"), ("hugepages-16777216kB", "16GB"), ("hugepages-1536kB", "1.5MB")])
    func pageSizesAreNamedAsRuncNamesThem(_ directory: String, _ name: String) {
        #expect(CgroupHost.pageSize(directory: directory) == name)
    }

    @Test func thisHostIsClassifiedAsRuncSeesIt() {
        let host = CgroupHost.detect()
        let unified = (try? FileManager.default.attributesOfItem(atPath: "/sys/fs/cgroup/cgroup.controllers")) != nil
        #expect((host.mode == .unified) == unified)
        #expect(!host.controllers.names.isEmpty)
        if host.mode != .unified {
            #expect(host.v1MountPoints["memory"] != nil)
        }
    }
}
