/// Where a layer's changes over its parent are found on disk, as a driver lays them out.
enum ChangesSource: Sendable {
    /// overlay: the upper directory holds exactly the changes; deletions are 0/0 character
    /// devices and replaced directories carry `trusted.overlay.opaque=y`.
    case overlayUpper(String)
    /// Copy drivers (vfs, btrfs): both layers are full trees and the changes are their
    /// difference (`parent` nil: everything is new).
    case compare(layer: String, parent: String?)
}
