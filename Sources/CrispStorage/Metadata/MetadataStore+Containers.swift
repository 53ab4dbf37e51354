import CrispCore
import Foundation
import GRDB

extension MetadataStore {
    /// Reserves the name and registers the container's (incomplete) read-write layer on the
    /// image's top layer, in one transaction. Returns the parent layer.
    func beginContainer(_ o: CreateContainerOptions, layerID: LayerID) throws -> LayerID? {
        try pool.write { db in
            if let other = try String.fetchOne(db, sql: "SELECT id FROM container WHERE name = ?", arguments: [o.name]) {
                throw CrispError.alreadyExists("container name \"\(o.name)\" is taken by \(other)")
            }
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM container WHERE id = ?", arguments: [o.id.rawValue]) == true {
                throw CrispError.alreadyExists("container \(o.id) already exists")
            }
            guard let image = try Row.fetchOne(db, sql: "SELECT topLayer FROM image WHERE id = ?", arguments: [o.imageID.description]) else {
                throw CrispError.notFound("image \(o.imageID) not found")
            }
            let top: String? = image["topLayer"]
            try db.execute(sql: "INSERT INTO layer (id, parent, kind, created, complete) VALUES (?, ?, 'container', ?, 0)",
                           arguments: [layerID.rawValue, top, Date().timeIntervalSince1970])
            return top.map { LayerID(uncheckedRawValue: $0) }
        }
    }

    func commitContainer(_ o: CreateContainerOptions, layerID: LayerID) throws -> Container {
        try pool.write { db in
            let now = Date()
            try db.execute(sql: "UPDATE layer SET complete = 1 WHERE id = ?", arguments: [layerID.rawValue])
            try db.execute(sql: "INSERT INTO container (id, name, imageID, layerID, metadata, created) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [o.id.rawValue, o.name, o.imageID.description, layerID.rawValue, o.metadata, now.timeIntervalSince1970])
            return Container(id: o.id, name: o.name, imageID: o.imageID, layerID: layerID, metadata: o.metadata,
                             created: Date(timeIntervalSince1970: now.timeIntervalSince1970))
        }
    }

    /// Deletes the container row and marks its layer incomplete; the caller then removes the
    /// layer's content and row. Returns the layer.
    func beginRemoveContainer(_ id: ContainerID) throws -> LayerID {
        try pool.write { db in
            guard let layer = try String.fetchOne(db, sql: "SELECT layerID FROM container WHERE id = ?", arguments: [id.rawValue]) else {
                throw CrispError.notFound("container \(id) not found")
            }
            try db.execute(sql: "DELETE FROM container WHERE id = ?", arguments: [id.rawValue])
            try db.execute(sql: "UPDATE layer SET complete = 0 WHERE id = ?", arguments: [layer])
            return LayerID(uncheckedRawValue: layer)
        }
    }

    func container(_ id: ContainerID) throws -> Container? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM container WHERE id = ?", arguments: [id.rawValue]).map(Self.container)
        }
    }

    func container(named name: String) throws -> Container? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM container WHERE name = ?", arguments: [name]).map(Self.container)
        }
    }

    func containers() throws -> [Container] {
        try pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM container ORDER BY created").map(Self.container) }
    }

    func updateContainerMetadata(_ id: ContainerID, _ metadata: String) throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE container SET metadata = ? WHERE id = ?", arguments: [metadata, id.rawValue])
            guard db.changesCount == 1 else { throw CrispError.notFound("container \(id) not found") }
        }
    }

    /// Sum of the disk use of complete image layers.
    func imageLayerUsage() throws -> (bytes: Int64, inodes: Int64) {
        try pool.read { db in
            let r = try Row.fetchOne(db, sql: "SELECT COALESCE(SUM(diskBytes), 0) AS b, COALESCE(SUM(diskInodes), 0) AS i FROM layer WHERE kind = 'image' AND complete = 1")!
            return (r["b"], r["i"])
        }
    }
}

extension MetadataStore {
    /// Marks an unreferenced image layer incomplete (invisible) ahead of its removal.
    func beginRemoveLayer(_ id: LayerID) throws {
        try pool.write { db in
            guard let kind = try String.fetchOne(db, sql: "SELECT kind FROM layer WHERE id = ? AND complete = 1", arguments: [id.rawValue]) else {
                throw CrispError.notFound("layer \(id) not found")
            }
            guard kind == "image" else { throw CrispError.failedPrecondition("layer \(id) is a container layer: remove the container") }
            let refs = try Self.references(db, layer: id.rawValue)
            guard refs == 0 else { throw CrispError.failedPrecondition("layer \(id) is used by \(refs) layer(s), image(s) or container(s)") }
            try db.execute(sql: "UPDATE layer SET complete = 0 WHERE id = ?", arguments: [id.rawValue])
        }
    }
}
