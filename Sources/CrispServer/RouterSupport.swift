import GRPCCore
import GRPCProtobuf
import SwiftProtobuf

extension RPCRouter {
    /// Registers a unary handler that works on plain request and response messages.
    mutating func unary<Input: SwiftProtobuf.Message & Sendable, Output: SwiftProtobuf.Message & Sendable>(
        _ method: MethodDescriptor,
        _: Input.Type = Input.self,
        _ handler: @escaping @Sendable (Input, ServerContext) async throws -> Output
    ) {
        registerHandler(forMethod: method, deserializer: ProtobufDeserializer<Input>(),
                        serializer: ProtobufSerializer<Output>()) { request, context in
            let single = try await ServerRequest(stream: request)
            let response = try await handler(single.message, context)
            return StreamingServerResponse(single: ServerResponse(message: response))
        }
    }

    /// Registers a server-streaming handler: one request message, then the handler writes as
    /// many responses as it likes until it returns (or the client goes away).
    mutating func serverStreaming<Input: SwiftProtobuf.Message & Sendable, Output: SwiftProtobuf.Message & Sendable>(
        _ method: MethodDescriptor,
        _ handler: @escaping @Sendable (Input, ServerContext, RPCWriter<Output>) async throws -> Void
    ) {
        registerHandler(forMethod: method, deserializer: ProtobufDeserializer<Input>(),
                        serializer: ProtobufSerializer<Output>()) { request, context in
            let single = try await ServerRequest(stream: request)
            return StreamingServerResponse(of: Output.self) { writer in
                try await handler(single.message, context, writer)
                return [:]
            }
        }
    }

    /// Every method of `descriptors` without a handler answers UNIMPLEMENTED with its own name,
    /// whatever the request holds (the body is never decoded).
    mutating func unimplemented(_ descriptors: [MethodDescriptor]) {
        for method in descriptors where !hasHandler(forMethod: method) {
            let name = "\(method.service.fullyQualifiedService)/\(method.method)"
            registerHandler(forMethod: method, deserializer: IgnoredMessage.Coder(),
                            serializer: IgnoredMessage.Coder()) { _, _ in
                throw RPCError(code: .unimplemented, message: "\(name) is not implemented by crisp yet")
            }
        }
    }
}

/// A message whose bytes are never looked at.
struct IgnoredMessage: Sendable {
    struct Coder: MessageSerializer, MessageDeserializer {
        func serialize<Bytes: GRPCContiguousBytes>(_ message: IgnoredMessage) throws -> Bytes { Bytes(repeating: 0, count: 0) }
        func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> IgnoredMessage { IgnoredMessage() }
    }
}
