import CrispCore
@testable import CrispSecurity
import Testing

@Suite struct SecurityPolicyTests {
    @Test(arguments: [
        ("", ProfileRequest.unset), ("runtime/default", .runtimeDefault), ("docker/default", .runtimeDefault),
        ("unconfined", .unconfined), ("localhost//etc/p.json", .localhost("/etc/p.json")), ("localhost/my-profile", .localhost("my-profile")),
    ])
    func deprecatedStrings(value: String, expected: ProfileRequest) throws {
        #expect(try ProfileRequest.deprecated(value, field: "f") == expected)
    }

    @Test(arguments: ["localhost/", "runtime/other", "Unconfined", "/etc/p.json"])
    func unknownDeprecatedStringsAreRefused(value: String) {
        #expect(throws: CrispError.self) { try ProfileRequest.deprecated(value, field: "seccomp_profile_path") }
    }

    @Test(arguments: [
        (ProfileRequest.unset, false, true, SeccompSelection.runtimeDefault),
        (.unset, false, false, .unconfined),
        (.runtimeDefault, false, false, .runtimeDefault),
        (.unconfined, false, true, .unconfined),
        (.localhost("/p.json"), false, true, .localhost(path: "/p.json")),
        (.runtimeDefault, true, true, .unconfined),
        (.localhost("/p.json"), true, true, .unconfined),
        (.unset, true, true, .unconfined),
    ])
    func seccompSelection(request: ProfileRequest, privileged: Bool, useDefault: Bool, expected: SeccompSelection) throws {
        #expect(try SeccompPolicy.select(request, privileged: privileged, useDefaultWhenEmpty: useDefault) == expected)
    }

    @Test func relativeLocalhostSeccompPathIsRefused() {
        #expect(throws: CrispError.self) { try SeccompPolicy.select(.localhost("p.json"), privileged: false, useDefaultWhenEmpty: true) }
    }

    static let off = SecurityHost(machine: "x86_64")
    static let on = SecurityHost(machine: "x86_64", appArmorEnabled: true, loadedAppArmorProfiles: ["crisp-default", "mine"])

    @Test(arguments: [
        (ProfileRequest.unset, false, true, AppArmorDecision.profile("crisp-default")),
        (.runtimeDefault, false, true, .profile("crisp-default")),
        (.unconfined, false, true, .none),
        (.localhost("mine"), false, true, .profile("mine")),
        (.runtimeDefault, true, true, .none),
        (.localhost("mine"), true, true, .none),
        (.unset, false, false, .none),
        (.runtimeDefault, false, false, .none),
        (.unconfined, false, false, .none),
    ])
    func appArmorDecisions(request: ProfileRequest, privileged: Bool, enabled: Bool, expected: AppArmorDecision) throws {
        #expect(try AppArmorPolicy.decide(request, privileged: privileged, host: enabled ? Self.on : Self.off) == expected)
    }

    @Test func appArmorLocalhostProfileMustBeLoadedAndAppArmorOn() {
        do {
            _ = try AppArmorPolicy.decide(.localhost("absent"), privileged: false, host: Self.on)
            Issue.record("accepted")
        } catch { #expect(error.code == .invalidArgument && error.message.contains("\"absent\" is not loaded")) }
        do {
            _ = try AppArmorPolicy.decide(.localhost("mine"), privileged: false, host: Self.off)
            Issue.record("accepted")
        } catch { #expect(error.code == .invalidArgument && error.message.contains("AppArmor is not enabled")) }
    }

    @Test func appArmorTemplateNamesTheProfileAndCannotBeInjected() {
        let text = AppArmorTemplate.render(name: "crisp-default")
        #expect(text.contains("profile crisp-default flags="))
        #expect(text.contains("deny mount,"))
        #expect(!text.contains("{{name}}"))
        let hostile = AppArmorTemplate.render(name: "x {\n capability,\n}")
        #expect(hostile.contains("profile xcapability flags="))
    }

    @Test func selinuxLabelsMergeOptionsWithPodLevel() {
        let d = SELinuxLabels.make(options: SELinuxOptions(), podLevel: "s0:c1,c2", privileged: false)
        #expect(d.process == "system_u:system_r:container_t:s0:c1,c2")
        #expect(d.mount == "system_u:object_r:container_file_t:s0:c1,c2")
        let o = SELinuxLabels.make(options: SELinuxOptions(user: "u", role: "r", type: "t", level: "s0:c5,c6"),
                                   podLevel: "s0:c1,c2", privileged: false)
        #expect(o.process == "u:r:t:s0:c5,c6")
        #expect(o.mount == "system_u:object_r:container_file_t:s0:c5,c6")
        let p = SELinuxLabels.make(options: SELinuxOptions(type: "t"), podLevel: "s0:c1,c2", privileged: true)
        #expect(p.process == "system_u:system_r:spc_t:s0:c1,c2")
    }

    @Test func mcsLevelsAreUniqueUnderConcurrency() async throws {
        let mcs = MCSAllocator(categories: 64)  // 2016 pairs: collisions are frequent
        let levels = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<8 {
                group.addTask { var out: [String] = []; for _ in 0..<200 { out.append(try mcs.reserve()) }; return out }
            }
            var all: [String] = []
            for try await l in group { all += l }
            return all
        }
        #expect(levels.count == 1600 && Set(levels).count == 1600)
        for l in levels {
            let parts = l.dropFirst(3).split(separator: ",").map { Int($0.dropFirst())! }
            #expect(l.hasPrefix("s0:c") && parts[0] < parts[1] && parts[1] < 64)
        }
        mcs.release(levels[0])
        #expect(mcs.claim(levels[0]))
        #expect(!mcs.claim(levels[1]))
    }

    @Test func mcsExhaustionIsAnError() throws {
        let mcs = MCSAllocator(categories: 3)  // 3 pairs
        for _ in 0..<3 { _ = try mcs.reserve() }
        #expect(throws: CrispError.self) { try mcs.reserve() }
    }
}

@Suite struct UserNamespacePolicyTests {
    static let m = IDMap(containerID: 0, hostID: 1000, length: 100_000)

    @Test func podModeWithOneMappingOfRoot() throws {
        let r = try UserNamespacePolicy.validate(mode: .pod, uids: [Self.m], gids: [Self.m], hostNetwork: false, hostPID: false, hostIPC: false)
        #expect(r?.uid == Self.m && r?.gid == Self.m)
        #expect(try UserNamespacePolicy.validate(mode: .node, uids: [], gids: [], hostNetwork: true, hostPID: true, hostIPC: true) == nil)
    }

    @Test(arguments: [
        (UserNamespacePolicy.Mode.pod, [m, IDMap(containerID: 100_000, hostID: 300_000, length: 10)], [m], false, "exactly one uid mapping"),
        (.pod, [m], [], false, "exactly one gid mapping"),
        (.pod, [IDMap(containerID: 1, hostID: 1000, length: 10)], [m], false, "leaves container id 0 unmapped"),
        (.pod, [IDMap(containerID: 0, hostID: 1000, length: 0)], [m], false, "empty or overflows"),
        (.pod, [m], [m], true, "host's network namespace"),
        (.container, [], [], false, "CONTAINER is not supported"),
        (.target, [], [], false, "TARGET is not supported"),
        (.node, [m], [m], false, "NODE takes no"),
    ])
    func invalidRequestsAreRefused(mode: UserNamespacePolicy.Mode, uids: [IDMap], gids: [IDMap], hostNetwork: Bool, mention: String) {
        do {
            _ = try UserNamespacePolicy.validate(mode: mode, uids: uids, gids: gids, hostNetwork: hostNetwork, hostPID: false, hostIPC: false)
            Issue.record("accepted")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains(mention), "\(error.message)")
        }
    }
}
