import IntegrationSupport
import CRIAPI
import CrispOS
import Foundation
import GRPCCore
import Testing

/// Pods with their own user namespace (CRI `userns_options`, POD mode), through crispd,
/// crisp-pinns, conmon and runc: the mapping inside, the image seen as root's through the
/// idmapped root filesystem while new files land under the mapped host ids, the refused
/// requests, and nothing left after removal.
@Suite(.serialized) struct UserNamespaceTests {
    typealias Lifecycle = CRI

    static func mapping(_ c: UInt32, _ h: UInt32, _ l: UInt32) -> Runtime_V1_IDMapping {
        var m = Runtime_V1_IDMapping()
        m.containerID = c
        m.hostID = h
        m.length = l
        return m
    }

    static func userns(_ mode: Runtime_V1_NamespaceMode, uids: [Runtime_V1_IDMapping], gids: [Runtime_V1_IDMapping]) -> Runtime_V1_UserNamespace {
        var u = Runtime_V1_UserNamespace()
        u.mode = mode
        u.uids = uids
        u.gids = gids
        return u
    }

    /// Every regular file named `name` under `dir`.
    static func find(_ name: String, under dir: String) -> [String] {
        var out: [String] = []
        let e = FileManager.default.enumerator(atPath: dir)
        while let p = e?.nextObject() as? String { if (p as NSString).lastPathComponent == name { out.append(dir + "/" + p) } }
        return out
    }

    @Test func podUserNamespaceWithIdmappedRootfs() async throws {
        if let why = PodNetworkTests.skipReason() { print("skipped: \(why)"); return }
        let (world, bridge) = try await SysctlAndLimitTests.bridgeWorld(bridgePrefix: "crus", net: 252)
        let crispd = world.crispd
        defer {
            world.cleanup()
            PodNetworkTests.deleteBridge(bridge)
        }
        try await crispd.withClients { runtime, _ in
            let status = try await runtime.status(Runtime_V1_StatusRequest())
            guard status.runtimeHandlers.first(where: { $0.name == "runc" })?.features.userNamespaces == true else {
                print("skipped: crispd's start-up probe found no idmapped mount support on this host (see its log)")
                return
            }
            let m = Self.mapping(0, 1000, 100_000)
            let pod = try await Lifecycle.runPod(runtime, "userns", world: world) {
                $0.linux.securityContext.namespaceOptions.network = .pod
                $0.linux.securityContext.namespaceOptions.usernsOptions = Self.userns(.pod, uids: [m], gids: [m])
            }
            // A host directory of root's, as a volume the kubelet asks to have idmapped.
            let volume = crispd.dir + "/volume"
            try FileManager.default.createDirectory(atPath: volume, withIntermediateDirectories: true)
            try "host\n".write(toFile: volume + "/from-host", atomically: true, encoding: .utf8)
            let id = try await Lifecycle.startContainer(runtime, pod: pod, "inside", ["/bin/sleep", "3600"]) {
                $0.linux.securityContext.namespaceOptions = pod.config.linux.securityContext.namespaceOptions
                var mount = Runtime_V1_Mount()
                mount.containerPath = "/vol"
                mount.hostPath = volume
                mount.uidMappings = [m]
                mount.gidMappings = [m]
                $0.mounts = [mount]
            }
            let inVolume = try await Lifecycle.exec(runtime, id, "ls -ln /vol/from-host && echo new > /vol/from-inside")
            #expect(inVolume.code == 0 && inVolume.out.split(whereSeparator: \.isWhitespace).dropFirst(2).first == "0", "\(inVolume)")
            var vst = stat()
            // Written as the container's root through the idmapped mount: root's on the host too.
            #expect(stat(volume + "/from-inside", &vst) == 0 && vst.st_uid == 0, "owner \(vst.st_uid)")
            #expect(!(readSmallFile("/proc/self/mountinfo") ?? "").contains("idmapped-volumes"), "staging mounts left")
            let map = try await Lifecycle.exec(runtime, id, "cat /proc/self/uid_map")
            #expect(map.out.split(whereSeparator: \.isWhitespace) == ["0", "1000", "100000"], "\(map)")
            // The image's files are root's inside, through the idmapped layers.
            let owner = try await Lifecycle.exec(runtime, id, "ls -ln /bin/busybox")
            #expect(owner.out.split(whereSeparator: \.isWhitespace).dropFirst(2).first == "0", "\(owner)")
            #expect(try await Lifecycle.exec(runtime, id, "echo hello > /written-inside && cat /written-inside").out == "hello")
            let written = Self.find("written-inside", under: crispd.root)
            #expect(written.count == 1, "\(written)")
            if let path = written.first {
                var st = stat()
                #expect(stat(path, &st) == 0 && st.st_uid == 1000 && st.st_gid == 1000, "\(path) owned by \(st.st_uid):\(st.st_gid)")
            }
            // And the image layer itself was not touched.
            var layerFile = stat()
            let busyboxes = Self.find("busybox", under: crispd.root + "/storage").filter { !$0.contains("/merged/") }
            #expect(!busyboxes.isEmpty && busyboxes.allSatisfy { stat($0, &layerFile) == 0 && layerFile.st_uid == 0 }, "\(busyboxes)")
            try await Lifecycle.removePod(runtime, pod.id)

            let refusals: [(String, Runtime_V1_UserNamespace, Bool, String)] = [
                ("two-maps", Self.userns(.pod, uids: [m, Self.mapping(100_000, 300_000, 10)], gids: [m]), false, "exactly one uid mapping"),
                ("no-root", Self.userns(.pod, uids: [Self.mapping(1, 1000, 10)], gids: [m]), false, "container id 0 unmapped"),
                ("container-mode", Self.userns(.container, uids: [], gids: []), false, "CONTAINER"),
                ("target-mode", Self.userns(.target, uids: [], gids: []), false, "TARGET"),
                ("host-network", Self.userns(.pod, uids: [m], gids: [m]), true, "host's network namespace"),
            ]
            for (name, u, hostNetwork, mention) in refusals {
                do {
                    _ = try await Lifecycle.runPod(runtime, name, world: world) {
                        $0.linux.securityContext.namespaceOptions.network = hostNetwork ? .node : .pod
                        $0.linux.securityContext.namespaceOptions.usernsOptions = u
                    }
                    Issue.record("pod \(name) was accepted")
                } catch let e as RPCError {
                    #expect(e.code == .invalidArgument, "\(name): \(e)")
                    #expect(e.message.contains(mention), "\(name): \(e.message)")
                }
            }
        }
        world.assertNoLeaks()
        let pins = ((try? FileManager.default.contentsOfDirectory(atPath: "/var/run/userns")) ?? []).filter {
            world.podIDs.contains(String($0.dropFirst("crisp-".count)))
        }
        #expect(pins.isEmpty, "user namespace pins left: \(pins)")
    }
}
