// swift-tools-version: 6.1
// Drover: a background job system for Linux, backed by PostgreSQL or SQLite.
//
// Targets follow the layers of docs/architecture.md; dependencies point down only:
//   drover (executable) → Drover → DroverRuntime → DroverQueue → DroverPersistence → CLibPQ, CSQLite
//                                  DroverRuntime → CSystemd, CProcess
//                         Drover → DroverWeb → DroverRuntime, Hummingbird, Mustache (the dashboard)
//   DroverPostgresNIO → Drover, DroverQueue, PostgresNIO (enqueue in an app's postgres-nio transaction;
//                        a product of its own: the drover binary and the Drover library never link it)
import PackageDescription

let package = Package(
    name: "Drover",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "drover", targets: ["drover"]),
        .library(name: "Drover", targets: ["Drover"]),
        // For an app's tests only: a JobContext built by hand, and running enqueued jobs to
        // completion inside the test (a product of its own, so that none of it reaches the app).
        .library(name: "DroverTesting", targets: ["DroverTesting"]),
        // For Vapor and Hummingbird apps that hold a postgres-nio client: typed jobs enqueued inside
        // the app's own postgres-nio transaction (PostgreSQL only). A product of its own, so that an
        // app without NIO, and the drover binary, never build or link postgres-nio.
        .library(name: "DroverPostgresNIO", targets: ["DroverPostgresNIO"]),
    ],
    dependencies: [
        // The command line: parsing, help text, man pages.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // The configuration file: YAML with line numbers for error messages.
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // Metrics: the API (swift-metrics) and its Prometheus backend and registry for /metrics.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // The logging facade: Drover's lines and a Swift job's go through a swift-log Logger.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // The dashboard (DroverWeb): an HTTP server, and templates that escape by default. Hummingbird
        // without its swift-configuration trait, which Drover does not use (it only adds build time).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        // Hummingbird's own dependencies, named because DroverWeb uses them directly: its logger
        // (quiet, or Drover's log), the server's channel (the port it got) and its graceful stop.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Trace context: the Swift API's enqueue injects the current ServiceContext, the worker
        // extracts it around perform and starts a span (swift-distributed-tracing's API only: an
        // app brings its tracer, swift-otel say).
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // DroverPostgresNIO only (and Examples/Posts): the PostgreSQL client of Vapor and Hummingbird
        // apps, whose transactions DroverPostgresNIO enqueues in. Nothing else imports it.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // Tests only: the differential store test generates its cases and shrinks a failing one.
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // C layer: system libraries found through pkg-config.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // SQLite, the store's embedded backend (no database server).
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // fork/exec of children entirely in C (docs/architecture.md), and the few Linux calls Glibc does not expose.
        .target(name: "CProcess"),
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),

        // Persistence: connections, bound queries, rows, transactions, LISTEN/NOTIFY, records, migrations.
        .target(name: "DroverPersistence", dependencies: ["CLibPQ", "CSQLite"]),

        // Queue: the data model and job state transitions as SQL.
        .target(name: "DroverQueue", dependencies: ["DroverPersistence"]),

        // Runtime: configuration, processes, signals, systemd.
        .target(
            name: "DroverRuntime",
            dependencies: [
                "DroverQueue", "DroverPersistence", "CSystemd", "CProcess",
                .product(name: "Yams", package: "Yams"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The Promela model of the lease protocol, checked by scripts/model-check (spin).
            exclude: ["Lease/lease.pml"]
        ),

        // The web dashboard and /metrics, served by `drover web` and the supervisor's web child. The
        // runtime does not depend on it: the supervisor only spawns `drover _child web`.
        .target(
            name: "DroverWeb",
            dependencies: [
                "DroverRuntime", "DroverQueue", "DroverPersistence",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // The public Swift API and the command line an application's own binary can reuse.
        .target(
            name: "Drover",
            dependencies: [
                "DroverRuntime", "DroverQueue", "DroverPersistence", "DroverWeb",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),

        // Testing an app's jobs: JobContext(jobID:…services:), JobDrain, TemporaryJobDatabase.
        .target(
            name: "DroverTesting",
            dependencies: ["Drover", "DroverRuntime", "DroverQueue", .product(name: "Logging", package: "swift-log")]
        ),

        // Enqueueing typed jobs through postgres-nio, in an app's own transaction (the SQL function
        // enqueue_many, with JobRules checked first).
        .target(
            name: "DroverPostgresNIO",
            dependencies: [
                "Drover", "DroverQueue",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Examples/Posts: a Hummingbird app that creates a post and enqueues its job in one
        // postgres-nio transaction. A target of this package (not a package of its own like
        // Examples/Signup) so that NIO, Hummingbird and postgres-nio are built once, by
        // `swift build --build-tests`.
        .executableTarget(
            name: "posts-example",
            dependencies: [
                "Drover", "DroverPostgresNIO",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/Posts/Sources"
        ),

        // The `drover` binary: it only hands its arguments to the Drover library.
        .executableTarget(name: "drover", dependencies: ["Drover"]),

        // `make bench`: throughput of the queue layer and of the whole system (a developer tool, not shipped).
        .executableTarget(
            name: "drover-bench",
            dependencies: ["DroverQueue", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/DroverBench"
        ),

        // Tests.
        .target(name: "CTestSupport", path: "Tests/CTestSupport"),
        .target(
            name: "DroverTestSupport",
            dependencies: ["DroverPersistence", "DroverQueue", "CTestSupport", "CProcess"],
            path: "Tests/DroverTestSupport"
        ),
        .testTarget(name: "DroverPersistenceTests", dependencies: ["DroverPersistence", "DroverTestSupport"]),
        .testTarget(
            name: "DroverQueueTests",
            dependencies: ["DroverQueue", "DroverTestSupport", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        .testTarget(name: "DroverRuntimeTests", dependencies: ["DroverRuntime", "DroverTestSupport", "CProcess", "CTestSupport", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "DroverCLITests", dependencies: ["Drover", "DroverTestSupport"]),
        .testTarget(name: "DroverWebTests", dependencies: ["DroverWeb", "DroverRuntime", "DroverTestSupport"]),
        .testTarget(
            name: "DroverTestingTests",
            dependencies: [
                "DroverTesting", "Drover", "DroverTestSupport",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                // Tests only: a tracer that records its spans.
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ]
        ),
        .testTarget(
            name: "DroverPostgresNIOTests",
            dependencies: [
                "DroverPostgresNIO", "Drover", "DroverQueue", "DroverTesting", "DroverTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ]
        ),
        // make chaos (minutes of faults against real processes), not make test.
        .testTarget(name: "DroverChaosTests", dependencies: ["DroverQueue", "DroverTestSupport"]),
    ]
)
