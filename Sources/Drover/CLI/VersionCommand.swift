import ArgumentParser
import DroverQueue
import Foundation

/// `drover version`.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print Drover's version and the schema version it expects."
    )

    @Flag(help: "Print JSON for programs instead of text for people.")
    var json = false

    func run() throws {
        if json {
            print("{\"version\":\"\(Drover.version)\",\"schema_version\":\(DroverSchema.latestVersion)}")
        } else {
            print("drover \(Drover.version) (schema version \(DroverSchema.latestVersion))")
        }
    }
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
