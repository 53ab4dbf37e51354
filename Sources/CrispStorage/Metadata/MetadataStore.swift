import CrispCore
import Foundation
import GRDB

/// The storage metadata in SQLite (GRDB `DatabasePool`: WAL, readers never block the writer),
/// with foreign keys so that a layer cannot disappear under its children, images or containers.
/// Every multi-step change is one transaction. A layer row is written `complete = 0` before its
/// content and flipped to 1 only after the content is on disk and its digest checked; readers
/// see complete layers only, and start-up removes the rest.
///
/// Safe to call from any thread (GRDB serializes writes).
final class MetadataStore: Sendable {
    let pool: DatabasePool

    /// `durable`: every commit is fsynced (SQLite's FULL). Otherwise NORMAL: in WAL mode a commit
    /// survives a crashed process and the database stays consistent after a power loss, but the
    /// last commits may be lost then, which is what `storage_sync = none` accepts.
    let durable: Bool

    init(path: String, durable: Bool = true) throws {
        self.durable = durable
        var config = Configuration()
        config.foreignKeysEnabled = true
        config.busyMode = .timeout(10)
        pool = try DatabasePool(path: path, configuration: config)
        // Set on the writer after the pool exists: GRDB's pool sets NORMAL itself when it turns
        // WAL on, after `prepareDatabase`, so a level set there is silently replaced. Found by the
        // power-loss stress scenario: with `storage_sync = filesystem` a pull that had returned
        // was missing after the cut, because its commit was never fsynced.
        let level = durable ? Self.durableLevel : Self.relaxedLevel
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = \(level)") }
        let now = try synchronousLevel()
        guard now == level else { throw CrispError(.internal, "SQLite kept synchronous = \(now) on \(path); \(level) was asked") }
        try Self.migrator.migrate(pool)
    }

    /// SQLite's `synchronous` levels: FULL fsyncs the WAL at every commit, NORMAL only at
    /// checkpoints.
    static let durableLevel = 2, relaxedLevel = 1

    /// The writer's `synchronous` level, as SQLite reports it.
    func synchronousLevel() throws -> Int {
        try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    /// Makes every commit so far durable even when commits are not (`durable` false): in WAL
    /// mode with NORMAL, a checkpoint syncs the WAL first and the database after. Used before
    /// files are deleted on the strength of a commit: a power cut must not bring back rows that
    /// point at directories gone (or since rewritten in part under the same layer id).
    func makeCommitsDurable() throws {
        guard !durable else { return }
        try pool.writeWithoutTransaction { db in _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(FULL)") }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE layer (
                    id TEXT PRIMARY KEY NOT NULL,
                    parent TEXT REFERENCES layer(id) ON DELETE RESTRICT,
                    kind TEXT NOT NULL CHECK (kind IN ('image', 'container')),
                    diffDigest TEXT,
                    compressedDigest TEXT,
                    compressedSize INTEGER,
                    uncompressedSize INTEGER NOT NULL DEFAULT 0,
                    created REAL NOT NULL,
                    complete INTEGER NOT NULL DEFAULT 0,
                    diskBytes INTEGER NOT NULL DEFAULT 0,
                    diskInodes INTEGER NOT NULL DEFAULT 0
                );
                CREATE INDEX layer_parent ON layer(parent);
                CREATE TABLE image (
                    id TEXT PRIMARY KEY NOT NULL,
                    topLayer TEXT REFERENCES layer(id) ON DELETE RESTRICT,
                    repoDigests TEXT NOT NULL,
                    manifest BLOB NOT NULL,
                    config BLOB NOT NULL,
                    size INTEGER NOT NULL,
                    created REAL NOT NULL
                );
                CREATE INDEX image_top ON image(topLayer);
                CREATE TABLE imageName (
                    name TEXT PRIMARY KEY NOT NULL,
                    imageID TEXT NOT NULL REFERENCES image(id) ON DELETE CASCADE
                );
                CREATE INDEX imageName_image ON imageName(imageID);
                CREATE TABLE container (
                    id TEXT PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL UNIQUE,
                    imageID TEXT NOT NULL REFERENCES image(id) ON DELETE RESTRICT,
                    layerID TEXT NOT NULL UNIQUE REFERENCES layer(id) ON DELETE RESTRICT,
                    metadata TEXT NOT NULL,
                    created REAL NOT NULL
                );
                """)
        }
        // Mount references survive a daemon restart: a container that still runs keeps its rootfs.
        m.registerMigration("v2-mountCount") { db in
            try db.execute(sql: "ALTER TABLE container ADD COLUMN mountCount INTEGER NOT NULL DEFAULT 0")
        }
        // The boot under which a layer was stored without a sync (`sync = none`); NULL once on disk.
        m.registerMigration("v3-unsyncedBoot") { db in
            try db.execute(sql: "ALTER TABLE layer ADD COLUMN unsyncedBoot TEXT")
        }
        return m
    }

    // MARK: - rows → values

    static func layer(_ r: Row) throws -> Layer {
        Layer(id: LayerID(uncheckedRawValue: r["id"]),
              parent: (r["parent"] as String?).map { LayerID(uncheckedRawValue: $0) },
              diffDigest: try (r["diffDigest"] as String?).map { try Digest(parsing: $0) },
              compressedDigest: try (r["compressedDigest"] as String?).map { try Digest(parsing: $0) },
              compressedSize: r["compressedSize"],
              uncompressedSize: r["uncompressedSize"],
              created: Date(timeIntervalSince1970: r["created"]),
              diskBytes: r["diskBytes"], diskInodes: r["diskInodes"])
    }

    static func image(_ r: Row, names: [String]) throws -> Image {
        let repo = (try? JSONDecoder().decode([String].self, from: Data((r["repoDigests"] as String).utf8))) ?? []
        return Image(id: try Digest(parsing: r["id"]), names: names, repoDigests: repo,
                     topLayer: (r["topLayer"] as String?).map { LayerID(uncheckedRawValue: $0) },
                     manifest: [UInt8](r["manifest"] as Data), config: [UInt8](r["config"] as Data),
                     size: r["size"], created: Date(timeIntervalSince1970: r["created"]))
    }

    static func container(_ r: Row) throws -> Container {
        Container(id: ContainerID(uncheckedRawValue: r["id"]), name: r["name"],
                  imageID: try Digest(parsing: r["imageID"]), layerID: LayerID(uncheckedRawValue: r["layerID"]),
                  metadata: r["metadata"], created: Date(timeIntervalSince1970: r["created"]))
    }

    static func names(_ db: GRDB.Database, image: String) throws -> [String] {
        try String.fetchAll(db, sql: "SELECT name FROM imageName WHERE imageID = ? ORDER BY name", arguments: [image])
    }

    /// Number of things that keep a layer alive: child layers, images with it on top, containers.
    static func references(_ db: GRDB.Database, layer: String) throws -> Int {
        try Int.fetchOne(db, sql: """
            SELECT (SELECT COUNT(*) FROM layer WHERE parent = ?1)
                 + (SELECT COUNT(*) FROM image WHERE topLayer = ?1)
                 + (SELECT COUNT(*) FROM container WHERE layerID = ?1)
            """, arguments: [layer]) ?? 0
    }
}
