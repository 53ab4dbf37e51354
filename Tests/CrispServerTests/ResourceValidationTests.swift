import CRIAPI
import CrispCore
@testable import CrispServer
import Testing

/// Limits the kernel would refuse are InvalidArgument before any runtime call (the full fuzzer's
/// cpu_quota Int64.max and memory limit of 4 bytes came back as Internal from runc update).
@Suite struct ResourceValidationTests {
    static func code(_ set: (inout Runtime_V1_LinuxContainerResources) -> Void) -> CrispError.Code? {
        var l = Runtime_V1_LinuxContainerResources()
        set(&l)
        do { _ = try RuntimeService.resources(l); return nil } catch { return error.code }
    }

    @Test func outOfRangeLimitsAreRefused() {
        #expect(Self.code { $0.cpuQuota = .max } == .invalidArgument)
        #expect(Self.code { $0.cpuQuota = RuntimeService.maximumCPUQuota + 1 } == .invalidArgument)
        #expect(Self.code { $0.cpuQuota = RuntimeService.maximumCPUQuota } == nil)
        #expect(Self.code { $0.memoryLimitInBytes = 4 } == .invalidArgument)
        #expect(Self.code { $0.memoryLimitInBytes = (12 << 20) - 1 } == .invalidArgument)
        #expect(Self.code { $0.memoryLimitInBytes = 12 << 20 } == nil)
        #expect(Self.code { $0.memoryLimitInBytes = 0 } == nil)
    }
}
