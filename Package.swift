// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "pharma-mesh",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "pharma-mesh", targets: ["pharma-mesh"]),
        .library(name: "MeshRuntime", targets: ["MeshRuntime"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // Without the default ConfigurationSupport trait: nothing here reads swift-configuration, and building it
        // was part of every first build.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // Writes the zip archives the compressed-delivery tests read (the readers use the system zlib).
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
    ],
    targets: [
        // Process-wide SQLite settings (C: `sqlite3_config` is variadic), applied when the program loads.
        .target(name: "SQLiteTuning", linkerSettings: [.linkedLibrary("sqlite3")]),
        // The generic runtime: domains, recipes, tests, versions, scheduler. Knows nothing of pharma.
        .target(
            name: "MeshRuntime",
            dependencies: [
                "SQLiteTuning",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The URL surface of a mesh over HTTP (Hummingbird): every domain's four W's and an H, runs, tests,
        // lineage, events, process linkage and read-only SQL, with tokens and pages for people. Generic too.
        .target(
            name: "MeshServer",
            dependencies: [
                "MeshRuntime",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // PostgreSQL as a second engine (postgres-nio): published versions of chosen domains are loaded into a
        // schema per version and switched in one transaction. Generic too.
        .target(
            name: "MeshPostgres",
            dependencies: [
                "MeshRuntime",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The system zlib: inflates .gz deliveries and the members of .zip ones as they are read.
        .systemLibrary(name: "SystemZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Streaming readers for the vendor file formats and the feed layouts of shared/spec/feeds.md.
        .target(name: "FeedFormats", dependencies: ["SystemZlib"]),
        // Synthetic feeds at three scales, with ground truth.
        .target(name: "FeedGenerator"),
        .target(
            name: "Ingest",
            dependencies: [
                "MeshRuntime", "FeedFormats",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "Mastering",
            dependencies: ["MeshRuntime", "FeedFormats", .product(name: "GRDB", package: "GRDB.swift")]),
        .target(name: "Warehouse", dependencies: ["MeshRuntime", .product(name: "GRDB", package: "GRDB.swift")]),
        .target(name: "SelfService", dependencies: ["MeshRuntime", .product(name: "GRDB", package: "GRDB.swift")]),
        .executableTarget(
            name: "pharma-mesh",
            dependencies: [
                "MeshRuntime", "MeshServer", "MeshPostgres", "Ingest", "Mastering", "Warehouse", "SelfService",
                "FeedGenerator",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // Shared fixtures for the test targets: toy meshes and temporary homes.
        .target(
            name: "MeshTestSupport",
            dependencies: ["MeshRuntime", .product(name: "GRDB", package: "GRDB.swift")],
            path: "Tests/MeshTestSupport"
        ),
        // A tiny program that runs a toy mesh, so a test can kill a real process mid-build.
        .executableTarget(
            name: "mesh-fixture",
            dependencies: ["MeshRuntime", "MeshTestSupport"],
            path: "Tests/MeshFixture"
        ),
        .testTarget(
            name: "MeshRuntimeTests",
            dependencies: [
                "MeshRuntime", "MeshTestSupport", "mesh-fixture", .product(name: "GRDB", package: "GRDB.swift"),
            ],
            // Read by path: the OpenLineage schema the emitted events are validated against.
            exclude: ["OpenLineageSchema"]
        ),
        .testTarget(
            name: "MasteringTests",
            dependencies: [
                "Mastering", "Ingest", "FeedFormats", "MeshRuntime", "MeshTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "WarehouseTests",
            dependencies: [
                "Warehouse", "SelfService", "Mastering", "Ingest", "MeshRuntime", "MeshTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "SelfServiceTests",
            dependencies: [
                "SelfService", "Warehouse", "Mastering", "Ingest", "MeshRuntime", "MeshTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "MeshServerTests",
            dependencies: [
                "MeshServer", "MeshRuntime", "MeshTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "PostgresTests",
            dependencies: [
                "MeshPostgres", "MeshRuntime", "MeshTestSupport", "Ingest", "Mastering", "Warehouse", "SelfService",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .testTarget(
            name: "FeedFormatsTests",
            dependencies: ["FeedFormats", .product(name: "ZIPFoundation", package: "ZIPFoundation")]),
        .testTarget(name: "FeedGeneratorTests", dependencies: ["FeedGenerator"]),
        .testTarget(
            name: "IngestTests",
            dependencies: [
                "Ingest", "MeshRuntime", "MeshTestSupport", "FeedGenerator", "FeedFormats", "Mastering", "Warehouse",
                "SelfService", .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // Drives the built command line as a user would, in a process of its own.
        .testTarget(name: "PharmaMeshTests", dependencies: ["pharma-mesh", "MeshTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
