import CrispCore
import CRIAPI
import CrispService

/// ImageFsInfo: image and container filesystem usage (crictl calls it before `crictl images`).
extension ImageService {
    func imageFsInfo(_ r: Runtime_V1_ImageFsInfoRequest, _ images: ImageManager) async throws -> Runtime_V1_ImageFsInfoResponse {
        let info = try await images.filesystemInfo()
        var out = Runtime_V1_ImageFsInfoResponse()
        out.imageFilesystems = [Self.usage(info.images, at: info.timestamp)]
        out.containerFilesystems = [Self.usage(info.containers, at: info.timestamp)]
        return out
    }

    static func usage(_ u: FilesystemUsage, at timestamp: Int64) -> Runtime_V1_FilesystemUsage {
        var m = Runtime_V1_FilesystemUsage()
        m.timestamp = timestamp
        var id = Runtime_V1_FilesystemIdentifier()
        id.mountpoint = u.mountpoint
        m.fsID = id
        var used = Runtime_V1_UInt64Value()
        used.value = u.usedBytes
        m.usedBytes = used
        var inodes = Runtime_V1_UInt64Value()
        inodes.value = u.inodesUsed
        m.inodesUsed = inodes
        return m
    }
}
