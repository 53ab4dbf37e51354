public import CrispCore
import CrispOCI
public import CrispStorage
import Foundation

/// Where an infra container's root filesystem comes from when `pause_image` is set.
public protocol InfraImageSource: Sendable {
    /// Gives pod `podID` a mounted read-write layer on `image` (pulled first when absent) and
    /// returns its root filesystem and the image's own command.
    func prepare(image: String, podID: String) async throws(CrispError) -> (rootfs: String, command: [String])
    /// Unmounts and removes what `prepare` made; unknown pods are ignored.
    func release(podID: String) async
}

/// The pause image through the image manager (pull) and storage (layer, mount), as CRI-O does;
/// the storage container has the pod's id.
public struct StorageInfraImages: InfraImageSource {
    let storage: Storage
    let images: ImageManager

    public init(storage: Storage, images: ImageManager) {
        self.storage = storage
        self.images = images
    }

    public func prepare(image: String, podID: String) async throws(CrispError) -> (rootfs: String, command: [String]) {
        let id = ContainerID(uncheckedRawValue: podID)
        do {
            let digest: CrispCore.Digest
            if let found = try await images.status(image) { digest = found.id } else {
                digest = try await images.pull(image)
            }
            guard let img = try await storage.image(digest) else {
                throw CrispError(.notFound, "pause image \(image) (\(digest)) vanished from storage while a pod was starting")
            }
            _ = try await storage.createContainer(CreateContainerOptions(id: id, name: "k8s_POD_infra_" + podID, imageID: img.id))
            do {
                let rootfs = try await storage.mountContainer(id)
                let config = (try? JSONDecoder().decode(ImageConfiguration.self, from: Data(img.config)))?.config
                return (rootfs, (config?.entrypoint ?? []) + (config?.cmd ?? []))
            } catch {
                try? await storage.removeContainer(id)
                throw error
            }
        } catch let e as CrispError {
            throw CrispError(e.code, "cannot prepare the pause image \(image): \(e.message)")
        } catch {
            throw CrispError(.internal, "cannot prepare the pause image \(image)", cause: error)
        }
    }

    public func release(podID: String) async {
        let id = ContainerID(uncheckedRawValue: podID)
        _ = try? await storage.unmountContainer(id, force: true)
        try? await storage.removeContainer(id)
    }
}
