import CRIAPI
import CrispCore
public import CrispService
public import GRPCCore
import SwiftProtobuf

/// `crisp.v1.Images` (Protos/crisp/v1/images.proto), served beside the CRI on the same socket:
/// what crispctl needs that the CRI's ImageService has no message for.
public struct CrispImagesService: RegistrableRPCService {
    let images: ImageManager

    public init(images: ImageManager) { self.images = images }

    public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        typealias M = Crisp_V1_Images.Method
        router.serverStreaming(M.PullWithProgress.descriptor) { (r: Crisp_V1_PullWithProgressRequest, _, writer: RPCWriter<Crisp_V1_PullProgress>) in
            try await pullWithProgress(r, writer)
        }
        router.unary(M.Tag.descriptor) { (r: Crisp_V1_TagRequest, _) in
            guard !r.source.isEmpty, !r.target.isEmpty else { throw CrispError.invalidArgument("Tag needs a source image and a target name") }
            let id = try await images.tag(r.source, as: r.target)
            return Crisp_V1_TagResponse.with { $0.imageRef = id.description }
        }
        router.unary(M.CheckStore.descriptor) { (_: Crisp_V1_CheckStoreRequest, _) in
            let report = try await images.checkStore()
            return Crisp_V1_CheckStoreResponse.with {
                $0.images = Int64(report.images)
                $0.layers = Int64(report.layers)
                $0.containers = Int64(report.containers)
                $0.findings = report.findings.map { f in
                    Crisp_V1_StoreFinding.with {
                        $0.severity = f.severity.rawValue
                        $0.subject = f.subject
                        $0.problem = f.problem
                    }
                }
            }
        }
        router.unimplemented(M.descriptors)
    }

    /// The pull runs as PullImage's does; its layers' state is sent as it changes, newest only:
    /// a slow reader gets fewer, fresher messages, and the pull never waits for it.
    func pullWithProgress(_ r: Crisp_V1_PullWithProgressRequest, _ writer: RPCWriter<Crisp_V1_PullProgress>) async throws {
        guard !r.image.isEmpty else { throw CrispError.invalidArgument("PullWithProgress: image is empty") }
        let auth = RegistryAuth(username: r.username, password: r.password, auth: r.auth,
                                identityToken: r.identityToken, registryToken: r.registryToken)
        let (states, continuation) = AsyncStream.makeStream(of: PullProgress.self, bufferingPolicy: .bufferingNewest(1))
        let image = r.image
        let pull = Task {
            defer { continuation.finish() }
            return try await images.pull(image, auth: auth) { continuation.yield($0) }
        }
        // A client that goes away does not stop the pull: a PullImage of the same image may
        // share it, and the image is wanted anyway (CRI-O's pulls go on the same way).
        var last = PullProgress()
        for await state in states {
            last = state
            try await writer.write(Self.message(state))
        }
        var final = Self.message(last)
        final.imageRef = try await pull.value.description
        try await writer.write(final)
    }

    static func message(_ p: PullProgress) -> Crisp_V1_PullProgress {
        Crisp_V1_PullProgress.with {
            $0.layers = p.layers.map { l in
                Crisp_V1_LayerProgress.with {
                    $0.digest = l.digest.description
                    $0.size = l.size
                    $0.received = l.received
                    $0.state = switch l.state {
                    case .waiting: .layerWaiting
                    case .exists: .layerExists
                    case .downloading: .layerDownloading
                    case .done: .layerDone
                    }
                }
            }
        }
    }
}
