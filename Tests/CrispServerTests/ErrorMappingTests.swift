import CrispCore
@testable import CrispServer
import GRPCCore
import Testing

/// What a client gets for a service error: its code, and a message that fits a header.
@Suite struct ErrorMappingTests {
    @Test(arguments: [
        (CrispError.Code.notFound, RPCError.Code.notFound), (.invalidArgument, .invalidArgument),
        (.alreadyExists, .alreadyExists), (.failedPrecondition, .failedPrecondition),
        (.deadlineExceeded, .deadlineExceeded), (.resourceExhausted, .resourceExhausted), (.unavailable, .unavailable),
        (.unimplemented, .unimplemented), (.permissionDenied, .permissionDenied), (.internal, .internalError),
    ])
    func everyCodeMaps(_ code: CrispError.Code, _ expected: RPCError.Code) {
        let e = ErrorMappingInterceptor.rpcError(from: CrispError(code, "container x not found", cause: CrispError.notFound("secret cause")),
                                                 method: "ContainerStatus")
        #expect(e.code == expected)
        #expect(e.message == "container x not found")
    }

    @Test func othersAreUnknownWithoutTheirText() {
        struct Leaky: Error { let password = "hunter2" }
        let e = ErrorMappingInterceptor.rpcError(from: Leaky(), method: "PullImage")
        #expect(e.code == .unknown)
        #expect(!e.message.contains("hunter2"))
        #expect(ErrorMappingInterceptor.rpcError(from: CancellationError(), method: "X").code == .cancelled)
    }

    /// A 70 kB id quoted whole made a header clients refuse (seen by the request fuzzer).
    @Test func longMessagesAreCutAndControlCharactersEscaped() {
        let huge = ErrorMappingInterceptor.clientMessage("container " + String(repeating: "é", count: 40_000) + " not found")
        #expect(huge.utf8.count <= ErrorMappingInterceptor.maxMessageBytes + 40)
        #expect(huge.hasSuffix("(80020 bytes in all)"))
        #expect(ErrorMappingInterceptor.clientMessage("a\0b\nc") == "a\\0b\\nc")
        #expect(ErrorMappingInterceptor.clientMessage("ünïcode ok") == "ünïcode ok")
    }
}
