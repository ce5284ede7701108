// swift-tools-version: 6.1
// An app that embeds Drover: its own job types, run by its own binary's workers.
import PackageDescription

let package = Package(
    name: "Signup",
    platforms: [.macOS(.v13)],
    dependencies: [
        // In an app of your own: .package(url: "https://…/drover", from: "0.1.0")
        .package(name: "Drover", path: "../.."),
    ],
    targets: [
        .executableTarget(name: "signup", dependencies: [.product(name: "Drover", package: "Drover")], path: "Sources/Signup"),
    ]
)
