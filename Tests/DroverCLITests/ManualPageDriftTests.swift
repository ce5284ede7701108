import DroverTestSupport
import Foundation
import Testing

/// man/drover.1 is generated (make man) and committed: it must keep up with the command line.
@Suite("drover(1) and the command line")
struct ManualPageDriftTests {
    static let page: String = {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("man/drover.1").path
        return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }()

    /// (command path, abstract, long option names) of every visible command, from the binary itself.
    static func commands() throws -> [(path: String, abstract: String, options: [String])] {
        let dump = try DroverBinary.run(["--experimental-dump-help"])
        guard dump.status == 0, let root = try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any],
              let command = root["command"] as? [String: Any] else {
            throw DeadlineExceededLike(description: "drover --experimental-dump-help failed: \(dump)")
        }
        var found: [(String, String, [String])] = []
        func walk(_ command: [String: Any], _ path: [String]) {
            guard command["shouldDisplay"] as? Bool != false else { return }
            let name = command["commandName"] as? String ?? ""
            let here = path + [name]
            let options = (command["arguments"] as? [[String: Any]] ?? []).compactMap { argument -> String? in
                guard argument["shouldDisplay"] as? Bool != false, let names = argument["names"] as? [[String: Any]] else { return nil }
                return names.first { $0["kind"] as? String == "long" }?["name"] as? String
            }
            if name != "help" { found.append((here.dropFirst().joined(separator: " "), command["abstract"] as? String ?? "", options)) }
            for sub in command["subcommands"] as? [[String: Any]] ?? [] { walk(sub, here) }
        }
        walk(command, [])
        return found
    }

    struct DeadlineExceededLike: Error, CustomStringConvertible { let description: String }

    @Test("every command and every option of the command line is in the committed page (make man regenerates it)")
    func noDrift() throws {
        #expect(!Self.page.isEmpty, "man/drover.1 is missing: run make man")
        for (path, abstract, options) in try Self.commands() where !path.isEmpty {
            let name = path.split(separator: " ").last.map(String.init) ?? path
            #expect(Self.page.contains(".It Em \(name)\n"), "the command \(path) is not in man/drover.1: run make man")
            let firstSentence = abstract.split(separator: ".").first.map(String.init) ?? abstract
            #expect(Self.page.contains(firstSentence), "\(path)'s description changed: run make man")
            for option in options {
                #expect(Self.page.contains("Fl -\(option)"), "\(path) --\(option) is not in man/drover.1: run make man")
            }
        }
        #expect(!Self.page.contains("_child"), "hidden commands stay out of the page")
    }

    @Test("the page has its hand-written sections")
    func handWritten() {
        for section in [".Sh SIGNALS", ".Sh ENVIRONMENT", ".Sh FILES", ".Sh EXIT STATUS", ".Sh SEE ALSO"] {
            #expect(Self.page.contains(section))
        }
    }
}
