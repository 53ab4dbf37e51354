@testable import CrispStreaming
import Testing

@Suite struct StreamTokensTests {
    static let target = StreamTarget.portForward(PortForwardRequest(podID: "p", ports: [80]))

    @Test func aTokenIsGoodOnceAndOnlyForItsKind() {
        let tokens = StreamTokens()
        let t = tokens.issue(Self.target)
        #expect(t.count == 22)
        #expect(tokens.peek(t, kind: "exec") == nil)
        #expect(tokens.peek(t, kind: "portforward") == Self.target)
        #expect(tokens.redeem(t, kind: "portforward") == Self.target)
        #expect(tokens.redeem(t, kind: "portforward") == nil)
    }

    @Test func theCacheIsBounded() {
        let tokens = StreamTokens(capacity: 10)
        let first = tokens.issue(Self.target)
        for _ in 0..<25 { _ = tokens.issue(Self.target) }
        #expect(tokens.count == 10)
        #expect(tokens.peek(first, kind: "portforward") == nil)
    }

    @Test func tokensExpire() async throws {
        let tokens = StreamTokens(lifetime: .milliseconds(1))
        let t = tokens.issue(Self.target)
        try await Task.sleep(for: .milliseconds(5))
        #expect(tokens.redeem(t, kind: "portforward") == nil)
    }

    @Test func protocolNegotiationTakesTheClientsFirstSupportedChoice() {
        #expect(StreamProtocol.negotiate(client: ["v5.channel.k8s.io, v4.channel.k8s.io"], server: StreamProtocol.spdyRemoteCommand) == .v4)
        #expect(StreamProtocol.negotiate(client: ["v2.channel.k8s.io", "v4.channel.k8s.io"], server: StreamProtocol.spdyRemoteCommand) == .v2)
        #expect(StreamProtocol.negotiate(client: [], server: StreamProtocol.spdyRemoteCommand) == .v1)
        #expect(StreamProtocol.negotiate(client: ["v9"], server: StreamProtocol.spdyRemoteCommand) == nil)
        #expect(StreamProtocol.negotiate(client: ["v5.channel.k8s.io"], server: StreamProtocol.webSocketRemoteCommand) == .wsV5)
    }

    @Test func statusJSONDecodesAsClientGoDoes() {
        #expect(StreamOutcome(status: ExecStatus.success()) == StreamOutcome(exitCode: 0, message: nil))
        #expect(StreamOutcome(status: ExecStatus.exitCode(42, command: ["sh", "-c", "exit 42"])) == StreamOutcome(exitCode: 42, message: nil))
        #expect(StreamOutcome(status: ExecStatus.failure("container \"x\" not found\n")).message == "container \"x\" not found\n")
        #expect(StreamOutcome(status: "plain text").message == "plain text")
        #expect(StreamOutcome(status: "").succeeded)
    }
}
