/// The state of one pull's layers, as `ImagePuller.pull` reports it to whoever watches.
public struct PullProgress: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        /// Not started: waiting for a download slot, or for the layers below it.
        case waiting
        /// Already in the store.
        case exists
        case downloading
        /// Downloaded, verified and applied.
        case done
    }

    public struct Layer: Sendable, Equatable {
        public var digest: CrispCore.Digest
        public var size: Int64
        public var received: Int64
        public var state: State

        public init(digest: CrispCore.Digest, size: Int64, received: Int64, state: State) {
            self.digest = digest
            self.size = size
            self.received = received
            self.state = state
        }
    }

    /// Bottom first; empty until the manifest is read.
    public var layers: [Layer] = []

    public init(layers: [Layer] = []) { self.layers = layers }
}
