import CrispCore
import GRDB

extension MetadataStore {
    /// Records how many mount references the container holding `layer` has. Fails with
    /// `notFound` when no container owns the layer.
    func setMountCount(layer: LayerID, _ count: Int) throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE container SET mountCount = ? WHERE layerID = ?", arguments: [count, layer.rawValue])
            guard db.changesCount == 1 else { throw CrispError.notFound("no container owns layer \(layer)") }
        }
    }

    /// Containers whose recorded mount count is above zero (what a restarted daemon must keep).
    func recordedMounts() throws -> [(container: ContainerID, layer: LayerID, count: Int)] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT id, layerID, mountCount FROM container WHERE mountCount > 0").map {
                (ContainerID(uncheckedRawValue: $0["id"]), LayerID(uncheckedRawValue: $0["layerID"]), $0["mountCount"])
            }
        }
    }
}
