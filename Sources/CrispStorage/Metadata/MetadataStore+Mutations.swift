import CrispCore
import Foundation
import GRDB

extension MetadataStore {
    enum Begin { case started, exists(Layer) }

    // MARK: - layers

    /// Registers a layer that is about to be written (invisible until `completeLayer`). Returns
    /// `.exists` when a complete layer with this id is already there.
    func beginLayer(id: LayerID, parent: LayerID?, kind: String, diffDigest: Digest?,
                    compressedDigest: Digest?, compressedSize: Int64?) throws -> Begin {
        try pool.write { db in
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM layer WHERE id = ?", arguments: [id.rawValue]) {
                if row["complete"] as Bool { return .exists(try Self.layer(row)) }
                throw CrispError.alreadyExists("layer \(id) is being written by another request")
            }
            if let parent {
                let ok = try Bool.fetchOne(db, sql: "SELECT complete FROM layer WHERE id = ?", arguments: [parent.rawValue])
                guard ok == true else { throw CrispError.notFound("parent layer \(parent) of layer \(id) not found") }
            }
            try db.execute(sql: """
                INSERT INTO layer (id, parent, kind, diffDigest, compressedDigest, compressedSize, created, complete)
                VALUES (?, ?, ?, ?, ?, ?, ?, 0)
                """, arguments: [id.rawValue, parent?.rawValue, kind, diffDigest?.description,
                                 compressedDigest?.description, compressedSize, Date().timeIntervalSince1970])
            return .started
        }
    }

    func completeLayer(id: LayerID, uncompressedSize: Int64, diskBytes: Int64, diskInodes: Int64, unsyncedBoot: String? = nil) throws -> Layer {
        try pool.write { db in
            try db.execute(sql: "UPDATE layer SET complete = 1, uncompressedSize = ?, diskBytes = ?, diskInodes = ?, unsyncedBoot = ? WHERE id = ?",
                           arguments: [uncompressedSize, diskBytes, diskInodes, unsyncedBoot, id.rawValue])
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM layer WHERE id = ?", arguments: [id.rawValue]) else {
                throw CrispError.notFound("layer \(id) vanished while it was written")
            }
            return try Self.layer(row)
        }
    }

    func deleteLayerRows(_ ids: [LayerID]) throws {
        try pool.write { db in
            for id in ids {
                try db.execute(sql: "DELETE FROM container WHERE layerID = ?", arguments: [id.rawValue])
                try db.execute(sql: "DELETE FROM layer WHERE id = ?", arguments: [id.rawValue])
            }
        }
    }

    func layer(_ id: LayerID) throws -> Layer? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM layer WHERE id = ? AND complete = 1", arguments: [id.rawValue]).map(Self.layer)
        }
    }

    func layers() throws -> [Layer] {
        try pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM layer WHERE complete = 1 ORDER BY created").map(Self.layer) }
    }

    /// Incomplete layers, children before parents (the order they must be removed in).
    func incompleteLayers() throws -> [LayerID] {
        try pool.read { db in
            let ids = try String.fetchAll(db, sql: "SELECT id FROM layer WHERE complete = 0")
            var depth: [String: Int] = [:]
            for id in ids {
                var d = 0, cur: String? = id
                while let c = cur, d < 10_000 {
                    cur = try String.fetchOne(db, sql: "SELECT parent FROM layer WHERE id = ?", arguments: [c])
                    d += 1
                }
                depth[id] = d
            }
            return ids.sorted { depth[$0]! > depth[$1]! }.map { LayerID(uncheckedRawValue: $0) }
        }
    }

    /// Incomplete layers must not have complete children (a child is only started on a complete
    /// parent, and removal marks children first); if one does, it is marked incomplete too.
    func markDescendantsIncomplete() throws {
        try pool.write { db in
            while true {
                try db.execute(sql: """
                    UPDATE layer SET complete = 0 WHERE complete = 1
                    AND parent IN (SELECT id FROM layer WHERE complete = 0)
                    """)
                if db.changesCount == 0 { break }
            }
        }
    }

    /// Layers recorded complete whose directories are gone (a power cut with `storage_sync =
    /// none` can persist the commit and lose the files) become incomplete, with everything built
    /// on them; the images whose top is among them and the containers on them are dropped, so the
    /// clean-up that follows removes the rest. Returns the image ids and container ids dropped.
    func dropLost(_ lost: [LayerID]) throws -> (images: [String], containers: [String]) {
        try pool.write { db in
            for id in lost { try db.execute(sql: "UPDATE layer SET complete = 0 WHERE id = ?", arguments: [id.rawValue]) }
            while true {
                try db.execute(sql: "UPDATE layer SET complete = 0 WHERE complete = 1 AND parent IN (SELECT id FROM layer WHERE complete = 0)")
                if db.changesCount == 0 { break }
            }
            let containers = try String.fetchAll(db, sql: """
                SELECT id FROM container WHERE layerID IN (SELECT id FROM layer WHERE complete = 0)
                   OR imageID IN (SELECT id FROM image WHERE topLayer IN (SELECT id FROM layer WHERE complete = 0))
                """)
            for c in containers {
                let layer = try String.fetchOne(db, sql: "SELECT layerID FROM container WHERE id = ?", arguments: [c])
                try db.execute(sql: "DELETE FROM container WHERE id = ?", arguments: [c])
                if let layer { try db.execute(sql: "UPDATE layer SET complete = 0 WHERE id = ?", arguments: [layer]) }
            }
            let images = try String.fetchAll(db, sql: "SELECT id FROM image WHERE topLayer IN (SELECT id FROM layer WHERE complete = 0)")
            for i in images { try db.execute(sql: "DELETE FROM image WHERE id = ?", arguments: [i]) }
            return (images, containers)
        }
    }

    /// Complete layers not yet known to be on disk, with the boot they were stored under.
    func unsyncedLayers() throws -> [(id: LayerID, boot: String)] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT id, unsyncedBoot FROM layer WHERE complete = 1 AND unsyncedBoot IS NOT NULL").map {
                (LayerID(uncheckedRawValue: $0["id"]), $0["unsyncedBoot"])
            }
        }
    }

    func markSynced(_ ids: [LayerID]) throws {
        try pool.write { db in
            for id in ids { try db.execute(sql: "UPDATE layer SET unsyncedBoot = NULL WHERE id = ?", arguments: [id.rawValue]) }
        }
    }

    func allLayerIDs() throws -> Set<String> {
        try pool.read { db in Set(try String.fetchAll(db, sql: "SELECT id FROM layer")) }
    }

    /// The layer and its ancestors, nearest first.
    func chain(_ id: LayerID) throws -> [Layer] {
        try pool.read { db in
            var out: [Layer] = []
            var cur: String? = id.rawValue
            while let c = cur, let row = try Row.fetchOne(db, sql: "SELECT * FROM layer WHERE id = ?", arguments: [c]) {
                let l = try Self.layer(row)
                out.append(l)
                cur = l.parent?.rawValue
            }
            return out
        }
    }

    // MARK: - images

    func insertImage(_ o: CreateImageOptions) throws -> Image {
        try pool.write { db in
            var size: Int64 = 0
            if let top = o.topLayer {
                var cur: String? = top.rawValue
                while let c = cur {
                    guard let row = try Row.fetchOne(db, sql: "SELECT parent, uncompressedSize, complete FROM layer WHERE id = ?", arguments: [c]),
                          row["complete"] as Bool else {
                        throw CrispError.notFound("layer \(c) of image \(o.id) not found")
                    }
                    size += row["uncompressedSize"] as Int64
                    cur = row["parent"]
                }
            }
            let repo = String(decoding: try JSONEncoder().encode(o.repoDigests), as: UTF8.self)
            if let existing = try Row.fetchOne(db, sql: "SELECT topLayer FROM image WHERE id = ?", arguments: [o.id.description]) {
                guard (existing["topLayer"] as String?) == o.topLayer?.rawValue else {
                    throw CrispError.alreadyExists("image \(o.id) exists with another top layer")
                }
                try db.execute(sql: "UPDATE image SET repoDigests = ? WHERE id = ?", arguments: [repo, o.id.description])
            } else {
                try db.execute(sql: """
                    INSERT INTO image (id, topLayer, repoDigests, manifest, config, size, created) VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [o.id.description, o.topLayer?.rawValue, repo, Data(o.manifest), Data(o.config), size,
                                     o.created.timeIntervalSince1970])
            }
            for name in o.names {
                // A tag names one image: moving it here untags the previous holder.
                try db.execute(sql: "INSERT OR REPLACE INTO imageName (name, imageID) VALUES (?, ?)", arguments: [name, o.id.description])
            }
            let row = try Row.fetchOne(db, sql: "SELECT * FROM image WHERE id = ?", arguments: [o.id.description])!
            return try Self.image(row, names: Self.names(db, image: o.id.description))
        }
    }

    func image(_ id: Digest) throws -> Image? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM image WHERE id = ?", arguments: [id.description]).map {
                try Self.image($0, names: Self.names(db, image: id.description))
            }
        }
    }

    func image(named name: String) throws -> Image? {
        try pool.read { db in
            guard let id = try String.fetchOne(db, sql: "SELECT imageID FROM imageName WHERE name = ?", arguments: [name]),
                  let row = try Row.fetchOne(db, sql: "SELECT * FROM image WHERE id = ?", arguments: [id]) else { return nil }
            return try Self.image(row, names: Self.names(db, image: id))
        }
    }

    func images() throws -> [Image] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM image ORDER BY created").map {
                try Self.image($0, names: Self.names(db, image: $0["id"]))
            }
        }
    }

    func untag(_ name: String) throws -> Bool {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM imageName WHERE name = ?", arguments: [name])
            return db.changesCount > 0
        }
    }

    /// Deletes the image and marks the layers nothing else uses incomplete (they become
    /// invisible at once and a crash before their removal is cleaned at start-up). Returns
    /// those layers, top first.
    func removeImage(_ id: Digest) throws -> [LayerID] {
        try pool.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT topLayer FROM image WHERE id = ?", arguments: [id.description]) else {
                throw CrispError.notFound("image \(id) not found")
            }
            let users = try String.fetchAll(db, sql: "SELECT id FROM container WHERE imageID = ?", arguments: [id.description])
            guard users.isEmpty else {
                throw CrispError.failedPrecondition("image \(id) is used by \(users.count) container(s), e.g. \(users[0])")
            }
            // A container layer without its container row is one being created or removed right
            // now. Removing the image then would fail the creation's commit (the image row is
            // gone) or leave the image's layers behind without an image, so it waits its turn.
            let top: String? = row["topLayer"]
            if let top, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM layer WHERE parent = ? AND kind = 'container'", arguments: [top]) ?? 0 > 0 {
                throw CrispError.failedPrecondition("image \(id) is in use by a container being created or removed; try again")
            }
            try db.execute(sql: "DELETE FROM image WHERE id = ?", arguments: [id.description])
            var doomed: [LayerID] = []
            var cur: String? = row["topLayer"]
            while let c = cur {
                // A doomed child still references its parent until its row is deleted.
                let refs = try Self.references(db, layer: c) - (doomed.isEmpty ? 0 : 1)
                guard refs == 0 else { break }
                try db.execute(sql: "UPDATE layer SET complete = 0 WHERE id = ?", arguments: [c])
                doomed.append(LayerID(uncheckedRawValue: c))
                cur = try String.fetchOne(db, sql: "SELECT parent FROM layer WHERE id = ?", arguments: [c])
            }
            return doomed
        }
    }
}
