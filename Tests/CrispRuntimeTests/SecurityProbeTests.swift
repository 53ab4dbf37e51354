import CrispOS
import CrispSecurity
import Foundation
import Testing
@testable import CrispRuntime

@Suite struct SecurityProbeTests {
    @Test func seccompStatusIsRead() {
        #expect(SecurityProbe.underNoSeccompFilter(status: "Name:\tcrispd\nSeccomp:\t0\nSeccomp_filters:\t0\n"))
        #expect(!SecurityProbe.underNoSeccompFilter(status: "Name:\tcrispd\nSeccomp:\t2\nSeccomp_filters:\t1\n"))
        #expect(!SecurityProbe.underNoSeccompFilter(status: "Name:\tcrispd\n"))
    }

    /// The x32 probe agrees with how the running kernel was built, where it says (/proc/config.gz).
    @Test func x32IsLackingExactlyWhenTheKernelIsBuiltWithoutIt() async throws {
        guard SecurityProbe.detect().machine == "x86_64" else { print("skipped: not an x86_64 host"); return }
        guard FileManager.default.fileExists(atPath: "/proc/config.gz") else { print("skipped: the kernel does not show its configuration (/proc/config.gz)"); return }
        guard SecurityProbe.underNoSeccompFilter(status: readSmallFile("/proc/self/status") ?? "") else {
            print("skipped: the tests run under a seccomp filter, so the probe is not made"); return
        }
        let out = try await Spawn.run(Spawn.Options(path: "/bin/sh", arguments: ["-c", "zcat /proc/config.gz | grep X86_X32_ABI"]), timeout: .seconds(10))
        let config = String(decoding: out.stdout, as: UTF8.self)
        let lacked = SecurityProbe.detect().kernelLacksArchitectures
        if config.contains("CONFIG_X86_X32_ABI=y") {
            #expect(lacked.isEmpty, "\(config)")
        } else {
            #expect(config.contains("CONFIG_X86_X32_ABI is not set"), "\(config)")
            #expect(lacked == ["SCMP_ARCH_X32"])
        }
    }
}
