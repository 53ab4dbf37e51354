import CrispCore
import CrispTestSupport
import Testing
@testable import CrispNetwork

@Suite struct CNIChainRunnerTests {
    static let list = #"""
        {"cniVersion":"1.0.0","name":"chain","plugins":[
          {"type":"first","ipam":{"type":"host-local"}},
          {"type":"second","capabilities":{"portMappings":true}},
          {"type":"third","capabilities":{"bandwidth":true}}]}
        """#
    static let firstResult = #"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/ns"}],"ips":[{"address":"10.9.0.4/24","interface":0}]}"#

    func setup() throws -> (FakeCNIExecutor, CNIChainRunner, CNINetworkConfigList, CNIRuntimeConf) {
        let fake = FakeCNIExecutor()
        fake.setPlugin("first", FakeCNIExecutor.succeeding(result: try json(Self.firstResult)))
        fake.setPlugin("second", FakeCNIExecutor.succeeding())
        fake.setPlugin("third", FakeCNIExecutor.succeeding())
        let runner = CNIChainRunner(executor: fake, pluginDirs: ["/opt/cni/bin", "/usr/lib/cni"], logger: testLogger)
        let net = try CNINetworkConfigList(bytes: Array(Self.list.utf8), source: "t.conflist")
        let p = PodNetworkIdentity(id: "abc", name: "web", namespace: "ns1", uid: "u1")
        let caps = try CNICapabilities.arguments(portMappings: [PortMapping(hostPort: 8080, containerPort: 80)],
                                                 annotations: ["kubernetes.io/ingress-bandwidth": "1M"])
        return (fake, runner, net, CNIRuntimeConf(containerID: "abc", netnsPath: "/ns", args: p.cniArgs, capabilityArgs: caps))
    }

    @Test func addChainsPrevResultAndOffersOnlyDeclaredCapabilities() async throws {
        let (fake, runner, net, rt) = try setup()
        let result = try await runner.add(net, rt)
        #expect(result.podIPs == ["10.9.0.4"])
        let calls = fake.calls
        #expect(calls.map(\.pluginType) == ["first", "second", "third"])
        #expect(calls.allSatisfy { $0.command == .add })
        let confs = try calls.map { try JSONValue.parse($0.stdin, what: "stdin") }
        for c in confs {
            #expect(c["name"] == .string("chain"))
            #expect(c["cniVersion"] == .string("1.0.0"))
        }
        #expect(confs[0]["prevResult"] == nil)
        #expect(confs[1]["prevResult"] == (try json(Self.firstResult)))
        #expect(confs[0]["runtimeConfig"] == nil)
        #expect(confs[1]["runtimeConfig"]?.objectValue?.keys.sorted() == ["portMappings"])
        #expect(confs[2]["runtimeConfig"]?.objectValue?.keys.sorted() == ["bandwidth"])
        let env = calls[0].cniEnvironment
        #expect(env["CNI_COMMAND"] == "ADD")
        #expect(env["CNI_CONTAINERID"] == "abc")
        #expect(env["CNI_NETNS"] == "/ns")
        #expect(env["CNI_IFNAME"] == "eth0")
        #expect(env["CNI_PATH"] == "/opt/cni/bin:/usr/lib/cni")
        #expect(env["CNI_ARGS"] == "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u1")
    }

    @Test func delRunsInReverseWithCachedResultAndTriesEveryPlugin() async throws {
        let (fake, runner, net, rt) = try setup()
        fake.setPlugin("second", FakeCNIExecutor.failing(.del, code: 11, msg: "busy"))
        let cached = try json(Self.firstResult)
        await #expect {
            try await runner.del(net, rt, prevResult: cached)
        } throws: { e in
            let e = e as! CrispError
            return e.code == .unavailable && e.message.contains("\"second\"") && e.message.contains("busy")
        }
        #expect(fake.calls.map(\.pluginType) == ["third", "second", "first"])
        for c in fake.calls {
            #expect(c.command == .del)
            #expect(try JSONValue.parse(c.stdin, what: "")["prevResult"] == cached)
        }
    }

    @Test func pluginErrorIsSurfacedWithItsCodeAndMessage() async throws {
        let (fake, runner, net, rt) = try setup()
        fake.setPlugin("second", FakeCNIExecutor.failing(.add, code: 7, msg: "bad config for second"))
        await #expect {
            _ = try await runner.add(net, rt)
        } throws: { e in
            let e = e as! CrispError
            let cause = e.cause as? CNIPluginError
            return e.code == .invalidArgument && cause?.code == 7 && cause?.plugin == "second"
                && e.message.contains("bad config for second") && e.message.contains("code 7")
        }
        #expect(fake.calls.map(\.pluginType) == ["first", "second"])
    }

    @Test func exitWithoutErrorJSONReportsStatusAndStderr() async throws {
        let (fake, runner, net, rt) = try setup()
        fake.setPlugin("first") { _ in CNIExecOutput(exitStatus: 2, stdout: [], stderr: Array("panic: boom\n".utf8)) }
        await #expect {
            _ = try await runner.add(net, rt)
        } throws: { e in
            let m = (e as! CrispError).message
            return m.contains("\"first\" ADD exited with status 2") && m.contains("panic: boom")
        }
    }

    @Test func missingPluginIsReportedBeforeAnythingRuns() async throws {
        let (fake, runner, net, rt) = try setup()
        fake.removePlugin("third")
        await #expect {
            _ = try await runner.add(net, rt)
        } throws: { e in
            let e = e as! CrispError
            return e.code == .notFound && e.message.contains("\"third\"") && e.message.contains("/opt/cni/bin, /usr/lib/cni")
        }
        #expect(fake.calls.isEmpty)
    }

    @Test func checkStatusAndGCFollowTheConfigVersion() async throws {
        let (fake, runner, net, rt) = try setup()
        try await runner.check(net, rt, prevResult: try json(Self.firstResult))
        #expect(fake.calls.map(\.command) == [.check, .check, .check])
        #expect(try await runner.status(net) == false)  // 1.0.0: no STATUS
        #expect(try await runner.gc(net, validAttachments: []) == false)

        var v11 = net
        v11.cniVersion = "1.1.0"
        v11.version = .v1_1_0
        #expect(try await runner.status(v11) == true)
        #expect(try await runner.gc(v11, validAttachments: [("abc", "eth0")]) == true)
        let gcCalls = fake.calls.filter { $0.command == .gc }
        #expect(gcCalls.count == 3)
        let conf = try JSONValue.parse(gcCalls[0].stdin, what: "")
        #expect(conf["cni.dev/valid-attachments"] == .array([.object(["containerID": .string("abc"), "ifname": .string("eth0")])]))
        #expect(gcCalls[0].cniEnvironment["CNI_CONTAINERID"] == nil)

        var old = net
        old.cniVersion = "0.3.1"
        old.version = CNIVersion(0, 3, 1)
        let before = fake.calls.count
        try await runner.check(old, rt, prevResult: try json(Self.firstResult))
        #expect(fake.calls.count == before)  // CHECK needs 0.4.0
    }
}
