// swift-tools-version: 6.1
// An app that embeds Drover: its own job types, run by its own binary's workers.
import PackageDescription

let package = Package(
    name: "Signup",
    platforms: [.macOS(.v13)],
    dependencies: [
        // In an app of your own: .package(url: "https://…/drover", from: "0.1.0")
        .package(name: "Drover", path: "../.."),
        // The app's own instrument: a request id that follows the work it causes into the jobs.
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
    ],
    targets: [
        .executableTarget(
            name: "signup",
            dependencies: [
                .product(name: "Drover", package: "Drover"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            path: "Sources/Signup"
        ),
    ]
)
