import CrispCore
import CrispOCI
@testable import CrispRuntime
import Testing

/// Limits the host's cgroup hierarchy cannot take are left out of the spec and named in the
/// notes; the rest are kept.
@Suite struct SpecLimitTests {
    /// The kubelet's request for a Guaranteed pod's container: every page size, CPU, memory.
    static func kubeletInput(_ controllers: CgroupControllers?) -> ContainerSpecInput {
        var i = ContainerSpecInput(id: String(repeating: "b", count: 64), rootfs: "/rootfs")
        i.image.cmd = ["/bin/sh"]
        i.resources.cpuShares = 102
        i.resources.cpuQuota = 10000
        i.resources.cpuPeriod = 100000
        i.resources.memoryLimit = 64 << 20
        i.resources.hugepageLimits = [("2MB", 0), ("1GB", 0)]
        i.resources.cpusetCPUs = "0"
        i.defaults.pidsLimit = 1024
        i.defaults.cgroupControllers = controllers
        return i
    }

    static let thisHost = CgroupControllers(version: .v1, names: ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer",
                                                                  "blkio", "pids"], swap: true, hugePageSizes: ["2MB", "1GB"])
    static let fullV2 = CgroupControllers(version: .v2, names: ["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma"],
                                          swap: true, hugePageSizes: ["2MB", "1GB"])

    @Test func hybridHostLeavesOutHugepageLimitsOnly() throws {
        let (spec, notes) = try SpecBuilder().build(Self.kubeletInput(Self.thisHost))
        let r = try #require(spec.linux?.resources)
        #expect(r.hugepageLimits == nil)
        #expect(r.cpu?.shares == 102 && r.cpu?.quota == 10000 && r.cpu?.period == 100000 && r.cpu?.cpus == "0")
        #expect(r.memory?.limit == 64 << 20 && r.memory?.swap == 64 << 20)
        #expect(r.pids?.limit == 1024)
        #expect(notes.leftOutResources.map(\.controller) == ["hugetlb"])
        #expect(notes.leftOutResources.first?.what.contains("2MB,1GB") == true)
    }

    @Test func fullV2HostKeepsEverything() throws {
        let (spec, notes) = try SpecBuilder().build(Self.kubeletInput(Self.fullV2))
        let r = try #require(spec.linux?.resources)
        #expect(r.hugepageLimits == [.init(pageSize: "2MB", limit: 0), .init(pageSize: "1GB", limit: 0)])
        #expect(r.pids?.limit == 1024 && r.cpu?.cpus == "0" && r.memory?.swap == 64 << 20)
        #expect(notes.leftOutResources.isEmpty)
    }

    @Test func notProbedKeepsEverything() throws {
        let (spec, notes) = try SpecBuilder().build(Self.kubeletInput(nil))
        #expect(spec.linux?.resources?.hugepageLimits?.count == 2)
        #expect(notes.leftOutResources.isEmpty)
    }

    /// A bare v1 host: no pids, cpuset or hugetlb hierarchy, booted with swapaccount=0.
    @Test func bareV1HostLeavesOutPidsCpusetAndSwap() throws {
        let bare = CgroupControllers(version: .v1, names: ["cpu", "cpuacct", "memory", "devices"], swap: false)
        let (spec, notes) = try SpecBuilder().build(Self.kubeletInput(bare))
        let r = try #require(spec.linux?.resources)
        #expect(r.pids == nil && r.hugepageLimits == nil)
        #expect(r.cpu?.cpus == nil && r.cpu?.shares == 102, "cpuset dropped, the CPU limits kept")
        #expect(r.memory?.limit == 64 << 20 && r.memory?.swap == nil)
        #expect(Set(notes.leftOutResources.map(\.controller)) == ["hugetlb", "pids", "cpuset", "memory.swap"])
    }

    /// A v2 host whose kernel has 2 MB pages only: the 1 GB limit has no file to go to.
    @Test func pageSizesTheKernelLacksAreLeftOut() throws {
        var only2MB = Self.fullV2
        only2MB.hugePageSizes = ["2MB"]
        let (spec, notes) = try SpecBuilder().build(Self.kubeletInput(only2MB))
        #expect(spec.linux?.resources?.hugepageLimits == [.init(pageSize: "2MB", limit: 0)])
        #expect(notes.leftOutResources.map(\.controller) == ["hugetlb"])
        #expect(notes.leftOutResources.first?.what.hasSuffix("1GB") == true)
    }

    @Test func cpusetAloneLeavesNoEmptyCPUObject() {
        var r = RuntimeSpec.Resources()
        r.cpu = RuntimeSpec.CPU()
        r.cpu?.cpus = "0-1"
        r.cpu?.mems = "0"
        _ = CgroupControllers(version: .v1, names: ["cpu"], swap: true).restrict(&r)
        #expect(r.cpu == nil)
    }

    /// blkio is `io` on v2; rdma and `unified` only where the hierarchy has them.
    @Test(arguments: [(CgroupControllers.Version.v1, ["blkio"], true), (.v1, [], false),
                      (.v2, ["io"], true), (.v2, ["blkio"], false)] as [(CgroupControllers.Version, [String], Bool)])
    func blockIOFollowsTheVersionsName(_ version: CgroupControllers.Version, _ names: [String], _ kept: Bool) {
        var r = RuntimeSpec.Resources()
        r.blockIO = .init(weight: 500)
        let omitted = CgroupControllers(version: version, names: Set(names), swap: true).restrict(&r)
        #expect((r.blockIO != nil) == kept)
        #expect(omitted.map(\.controller) == (kept ? [] : [version == .v1 ? "blkio" : "io"]))
    }

    @Test func rdmaAndUnified() {
        var r = RuntimeSpec.Resources()
        r.rdma = ["mlx5_0": .init(hcaHandles: 3)]
        r.unified = ["memory.high": "1G"]
        var onV1 = r
        #expect(CgroupControllers(version: .v1, names: ["rdma"], swap: true).restrict(&onV1).map(\.controller) == ["unified"])
        #expect(onV1.rdma != nil && onV1.unified == nil)
        var onV2 = r
        #expect(CgroupControllers(version: .v2, names: ["memory"], swap: true).restrict(&onV2).map(\.controller) == ["rdma"])
        #expect(onV2.rdma == nil && onV2.unified == ["memory.high": "1G"])
    }

    /// UpdateContainerResources goes through the same restriction.
    @Test func updatesAreRestrictedToo() {
        var request = ContainerSpecInput.ResourceRequest()
        request.memoryLimit = 32 << 20
        request.cpusetCPUs = "1"
        var r = RuntimeSpec.Resources()
        (r.cpu, r.memory) = SpecBuilder.cpuAndMemory(request)
        let omitted = CgroupControllers(version: .v1, names: ["memory"], swap: false).restrict(&r)
        #expect(r.memory?.limit == 32 << 20 && r.memory?.swap == nil && r.cpu == nil)
        #expect(omitted.map(\.controller) == ["cpuset", "memory.swap"])
    }
}
