import CrispCore
import CrispRuntime
@testable import CrispService
import Foundation
import Testing

@Suite struct PodStatsParsingTests {
    @Test func procNetDevGivesEveryInterfaceButLoopback() {
        let text = """
            Inter-|   Receive                                                |  Transmit
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
                lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
              eth0:    5432      40    1    3    0     0          0         0     2100      21    2    4    0     0       0          0
            """
        let stats = ContainerService.interfaces(fromProcNetDev: text)
        #expect(stats == [InterfaceStats(name: "eth0", rxBytes: 5432, rxErrors: 1, txBytes: 2100, txErrors: 2,
                                         rxPackets: 40, rxDropped: 3, txPackets: 21, txDropped: 4)])
        #expect(ContainerService.interfaces(fromProcNetDev: "").isEmpty)
    }
}
