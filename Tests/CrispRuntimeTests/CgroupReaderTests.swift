import CrispCore
@testable import CrispRuntime
import Foundation
import Testing

/// Both cgroup layouts, on fixture trees written by the test (this host only runs v1).
@Suite struct CgroupReaderTests {
    func tree(_ files: [String: String]) throws -> String {
        let root = NSTemporaryDirectory() + "cgroup-fixture-\(UUID().uuidString)"
        for (path, text) in files {
            let full = root + "/" + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: true, encoding: .utf8)
        }
        return root
    }

    @Test func readsV1() throws {
        let root = try tree([
            "cpuacct/kube/c1/cpuacct.usage": "123456789\n",
            "memory/kube/c1/memory.usage_in_bytes": "10485760\n",
            "memory/kube/c1/memory.stat": "cache 100\nrss 4096\ntotal_rss 8192\ntotal_inactive_file 1048576\ntotal_pgfault 42\ntotal_pgmajfault 3\n",
            "pids/kube/c1/pids.current": "5\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let s = try #require(CgroupReader(root: root, layout: .v1).sample(path: "/kube/c1"))
        #expect(s.cpuUsageNanos == 123_456_789)
        #expect(s.memoryUsageBytes == 10_485_760)
        #expect(s.memoryWorkingSetBytes == 10_485_760 - 1_048_576)
        #expect(s.memoryRSSBytes == 8192)
        #expect(s.pageFaults == 42)
        #expect(s.majorPageFaults == 3)
        #expect(s.processes == 5)
        #expect(CgroupReader(root: root, layout: .v1).sample(path: "/kube/missing") == nil)
    }

    @Test func readsV2() throws {
        let root = try tree([
            "cgroup.controllers": "cpu memory pids\n",
            "kube/c1/cpu.stat": "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n",
            "kube/c1/memory.current": "2097152\n",
            "kube/c1/memory.stat": "anon 1048576\nfile 524288\ninactive_file 262144\npgfault 7\npgmajfault 1\n",
            "kube/c1/pids.current": "2\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let reader = CgroupReader(root: root, layout: .v2)
        let s = try #require(reader.sample(path: "kube/c1"))
        #expect(s.cpuUsageNanos == 2_500_000)
        #expect(s.memoryWorkingSetBytes == 2_097_152 - 262_144)
        #expect(s.memoryRSSBytes == 1_048_576)
        #expect(s.pageFaults == 7)
        #expect(s.processes == 2)
    }

    /// The counters the CRI metrics add: user/system CPU, cache, failcnt, OOM kills, processes
    /// (cgroup.procs) apart from threads (pids.current).
    @Test func metricCountersInBothLayouts() throws {
        let v1 = try tree([
            "cpuacct/c/cpuacct.usage": "300\n", "cpuacct/c/cpuacct.usage_user": "200\n", "cpuacct/c/cpuacct.usage_sys": "100\n",
            "memory/c/memory.usage_in_bytes": "4096\n", "memory/c/memory.stat": "total_cache 1024\n",
            "memory/c/memory.failcnt": "7\n", "memory/c/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
            "pids/c/pids.current": "5\n", "pids/c/cgroup.procs": "10\n11\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: v1) }
        let a = try #require(CgroupReader(root: v1, layout: .v1).sample(path: "/c"))
        #expect(a.cpuUserNanos == 200 && a.cpuSystemNanos == 100)
        #expect(a.memoryCacheBytes == 1024 && a.memoryFailcnt == 7 && a.oomKills == 2)
        #expect(a.leafProcesses == 2 && a.threads == 5 && a.processes == 5)

        let v2 = try tree([
            "c/cpu.stat": "usage_usec 30\nuser_usec 20\nsystem_usec 10\n", "c/memory.current": "4096\n",
            "c/memory.stat": "file 2048\n", "c/memory.events": "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
            "c/pids.current": "3\n", "c/cgroup.procs": "7\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: v2) }
        let b = try #require(CgroupReader(root: v2, layout: .v2).sample(path: "c"))
        #expect(b.cpuUserNanos == 20_000 && b.cpuSystemNanos == 10_000)
        #expect(b.memoryCacheBytes == 2048 && b.memoryFailcnt == 4 && b.oomKills == 1)
        #expect(b.leafProcesses == 1 && b.threads == 3 && b.processes == 3)
    }

    @Test func nanoCoresBetweenSamples() {
        let t0 = Date(timeIntervalSince1970: 1000)
        let a = CgroupSample(cpuUsageNanos: 1_000_000_000, memoryUsageBytes: 0, memoryWorkingSetBytes: 0, memoryRSSBytes: 0,
                             pageFaults: 0, majorPageFaults: 0, processes: 0, at: t0)
        var b = a
        b.cpuUsageNanos = 1_500_000_000
        b.at = t0.addingTimeInterval(2)
        #expect(CgroupReader.nanoCores(from: a, to: b) == 250_000_000)
        #expect(CgroupReader.nanoCores(from: b, to: a) == 0)
    }

    @Test func thisHostIsDetected() {
        let reader = CgroupReader(host: CgroupHost.detect())
        #expect(reader.layout == (FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers") ? .v2 : .v1))
    }

    /// A co-mounted `cpu,cpuacct` hierarchy is read where mountinfo says it is.
    @Test func v1CountersFollowTheMountPoints() throws {
        let root = try tree([
            "cpu,cpuacct/kube/c1/cpuacct.usage": "77\n",
            "memory/kube/c1/memory.usage_in_bytes": "4096\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let host = CgroupHost(mounts: CgroupMounts(v1: ["cpu": root + "/cpu,cpuacct", "cpuacct": root + "/cpu,cpuacct",
                                                        "memory": root + "/memory"]),
                              unifiedControllers: nil, swapAccounting: false, hugePageDirectories: nil)
        let s = try #require(CgroupReader(host: host).sample(path: "/kube/c1"))
        #expect(s.cpuUsageNanos == 77 && s.memoryUsageBytes == 4096 && s.processes == 0)
    }
}

@Suite struct CgroupPathTests {
    @Test func systemdSlicesNestByTheirDashPrefixes() {
        #expect(CgroupPaths.sliceDirectory("kubepods-burstable-pod12.slice") == "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12.slice")
        #expect(CgroupPaths.sliceDirectory("system.slice") == "system.slice")
        #expect(CgroupPaths.sliceDirectory("-.slice") == "")
    }

    @Test func containerDirectoriesForBothManagers() {
        #expect(CgroupPaths.directory(manager: .cgroupfs, parent: "/kubepods/pod1", id: "abc") == "/kubepods/pod1/crisp-abc")
        #expect(CgroupPaths.directory(manager: .systemd, parent: "kubepods-pod1.slice", id: "abc")
                == "/kubepods.slice/kubepods-pod1.slice/crisp-abc.scope")
        #expect(CgroupPaths.directory(manager: .systemd, parent: "", id: "abc") == "/system.slice/crisp-abc.scope")
        #expect(CgroupPaths.parentDirectory(manager: .systemd, parent: "kubepods-pod1.slice") == "/kubepods.slice/kubepods-pod1.slice")
        #expect(CgroupPaths.parentDirectory(manager: .cgroupfs, parent: "kubepods/pod1") == "/kubepods/pod1")
        #expect(CgroupPaths.parentDirectory(manager: .cgroupfs, parent: "") == nil)
    }

    @Test func samplesAddUp() {
        let a = CgroupSample(cpuUsageNanos: 1, memoryUsageBytes: 2, memoryWorkingSetBytes: 3, memoryRSSBytes: 4, pageFaults: 5,
                             majorPageFaults: 6, processes: 7, at: Date())
        let s = CgroupSample.sum([a, a], at: a.at)
        #expect(s?.cpuUsageNanos == 2 && s?.processes == 14 && s?.memoryWorkingSetBytes == 6)
        #expect(CgroupSample.sum([], at: a.at) == nil)
    }
}
