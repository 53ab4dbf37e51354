import CrispCore
import CrispRuntime
@testable import CrispService
import Foundation
import Testing

@Suite struct DeviceResolutionTests {
    @Test func aCharacterDeviceIsResolvedToItsNumbers() throws {
        let d = try ContainerService.resolveDevices([(containerPath: "/dev/mine", hostPath: "/dev/null", permissions: "")])
        #expect(d.count == 1)
        #expect(d.first?.type == "c" && d.first?.major == 1 && d.first?.minor == 3)
        #expect(d.first?.permissions == "rwm")
        #expect(d.first?.containerPath == "/dev/mine")
    }

    @Test func aMissingPathOrAPlainFileIsTheCallersError() {
        #expect(throws: CrispError.self) { _ = try ContainerService.resolveDevices([(containerPath: "/dev/x", hostPath: "/nonexistent-device", permissions: "rwm")]) }
        #expect(throws: CrispError.self) { _ = try ContainerService.resolveDevices([(containerPath: "/dev/x", hostPath: "/etc/hostname", permissions: "rwm")]) }
    }
}
