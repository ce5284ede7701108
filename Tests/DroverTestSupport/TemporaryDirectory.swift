import Foundation

/// A directory of a test's own, removed with it.
public final class TemporaryDirectory {
    public let url: URL

    public init(_ prefix: String = "drover") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID())")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Writes `text` to `name` in the directory with `mode` (a configuration file must not be
    /// writable by others) and returns its path.
    @discardableResult
    public func file(_ text: String, named name: String = "drover.yml", mode: mode_t = 0o644) throws -> String {
        let path = url.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, mode)
        return path
    }
}
