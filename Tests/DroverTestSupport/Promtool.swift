import Foundation
import Testing

/// Prometheus's own check of a `/metrics` page: `promtool check metrics` (Debian's prometheus
/// package, which `make test` installs) reading `text` on stdin. Its exit status and what it printed.
public enum Promtool {
    public static func check(_ text: String) throws -> (status: Int32, output: String) {
        let path = "/usr/bin/promtool"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            Issue.record("promtool is missing: make test installs Debian's prometheus package (scripts/install-deps web)")
            return (-1, "")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["check", "metrics"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: printed, as: UTF8.self))
    }
}
