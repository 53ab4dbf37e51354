public import CrispCore
public import CrispNetwork
import Synchronization

/// A hand-written `CNIExecutor` for tests of code that runs CNI: plugins "exist" when they have
/// a responder, every request is recorded, and each responder decides the output. Safe to use
/// concurrently.
public final class FakeCNIExecutor: CNIExecutor {
    /// Produces a plugin's output for a request (its stdin is the config the plugin would get).
    public typealias Responder = @Sendable (CNIExecRequest) throws(CrispError) -> CNIExecOutput

    private let state = Mutex<(responders: [String: Responder], calls: [CNIExecRequest], gates: [CNICommand: Gate])>(([:], [], [:]))

    public init() {}

    /// Installs or replaces the behaviour of plugin `type`.
    public func setPlugin(_ type: String, _ responder: @escaping Responder) {
        state.withLock { $0.responders[type] = responder }
    }

    /// Executions of `command` (after being recorded) wait at the returned gate until it is opened.
    public func hold(_ command: CNICommand) -> Gate {
        let gate = Gate()
        state.withLock { $0.gates[command] = gate }
        return gate
    }

    public func removePlugin(_ type: String) {
        _ = state.withLock { $0.responders.removeValue(forKey: type) }
    }

    /// Every request executed so far, in order.
    public var calls: [CNIExecRequest] { state.withLock { $0.calls } }

    public func findPlugin(_ type: String, in dirs: [String]) throws(CrispError) -> String {
        guard state.withLock({ $0.responders[type] != nil }) else { throw Self.missingPlugin(type, dirs) }
        return (dirs.first ?? "/fake") + "/" + type
    }

    public func execute(_ request: CNIExecRequest) async throws(CrispError) -> CNIExecOutput {
        let (responder, gate) = state.withLock { s in
            s.calls.append(request)
            return (s.responders[request.pluginType], s.gates[request.command])
        }
        if let gate { await gate.pass() }
        guard let responder else { throw Self.missingPlugin(request.pluginType, []) }
        return try responder(request)
    }

    /// A responder that behaves like a well-mannered plugin: ADD answers `result` (or passes the
    /// prevResult through when `result` is nil), every other command succeeds silently.
    public static func succeeding(result: JSONValue? = nil) -> Responder {
        { (req: CNIExecRequest) throws(CrispError) -> CNIExecOutput in
            guard req.command == .add else { return CNIExecOutput(exitStatus: 0, stdout: []) }
            if let result { return CNIExecOutput(exitStatus: 0, stdout: result.encoded()) }
            let conf = try JSONValue.parse(req.stdin, what: "stdin")
            let prev = conf["prevResult"] ?? .object(["cniVersion": conf["cniVersion"] ?? .string("1.0.0")])
            return CNIExecOutput(exitStatus: 0, stdout: prev.encoded())
        }
    }

    /// A responder that fails `command` with a CNI error object, succeeding otherwise.
    public static func failing(_ command: CNICommand, code: Int, msg: String) -> Responder {
        { (req: CNIExecRequest) throws(CrispError) -> CNIExecOutput in
            guard req.command == command else { return try succeeding()(req) }
            let err: JSONValue = .object(["cniVersion": .string("1.0.0"), "code": .int(Int64(code)), "msg": .string(msg)])
            return CNIExecOutput(exitStatus: 1, stdout: err.encoded())
        }
    }
}
