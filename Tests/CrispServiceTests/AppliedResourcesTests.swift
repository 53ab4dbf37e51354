import CrispCore
import CrispOCI
import CrispRuntime
@testable import CrispService
import Testing

/// ContainerStatus reports the limits as they went into the spec, not as they were asked for.
@Suite struct AppliedResourcesTests {
    static func kubeletRequest() -> ContainerSpecInput {
        var i = ContainerSpecInput(id: String(repeating: "d", count: 64), rootfs: "/rootfs")
        i.image.cmd = ["/bin/sh"]
        i.resources.cpuShares = 256
        i.resources.cpuQuota = 20000
        i.resources.cpuPeriod = 100000
        i.resources.memoryLimit = 128 << 20
        i.resources.hugepageLimits = [("2MB", 0), ("1GB", 0)]
        return i
    }

    @Test func leftOutHugepageLimitsAreNotReported() throws {
        var input = Self.kubeletRequest()
        input.defaults.cgroupControllers = CgroupControllers(version: .v1, names: ["cpu", "memory"], swap: false)
        let spec = try SpecBuilder().build(input).spec
        let r = ContainerRecord.Resources(applied: spec.linux?.resources, oomScoreAdj: 5)
        #expect(r.hugepageLimits.isEmpty)
        #expect(r.cpuShares == 256 && r.cpuQuota == 20000 && r.cpuPeriod == 100000)
        #expect(r.memoryLimit == 128 << 20 && r.memorySwapLimit == 0, "swap accounting off: no swap limit was set")
        #expect(r.oomScoreAdj == 5)
    }

    @Test func keptLimitsAreReportedAndUpdatesMergeIn() throws {
        var input = Self.kubeletRequest()
        input.defaults.cgroupControllers = CgroupControllers(version: .v2, names: ["cpu", "memory", "hugetlb"], swap: true)
        var r = ContainerRecord.Resources(applied: try SpecBuilder().build(input).spec.linux?.resources, oomScoreAdj: 0)
        #expect(r.hugepageLimits == ["2MB": 0, "1GB": 0])
        #expect(r.memorySwapLimit == 128 << 20)
        // UpdateContainerResources with only a memory limit leaves the CPU limits as they were.
        var update = ContainerSpecInput.ResourceRequest()
        update.memoryLimit = 64 << 20
        var applied = RuntimeSpec.Resources()
        (applied.cpu, applied.memory) = SpecBuilder.cpuAndMemory(update)
        r.apply(applied)
        #expect(r.memoryLimit == 64 << 20 && r.memorySwapLimit == 64 << 20 && r.cpuShares == 256)
    }
}
