@testable import Drover
import Testing

@Suite("Suggestions for a mistyped command")
struct UnknownCommandTests {
    @Test("edit distance counts insertions, deletions and substitutions")
    func editDistance() {
        #expect(UnknownCommand.editDistance("migrate", "migrate") == 0)
        #expect(UnknownCommand.editDistance("migarte", "migrate") == 2)
        #expect(UnknownCommand.editDistance("migrat", "migrate") == 1)
        #expect(UnknownCommand.editDistance("", "abc") == 3)
        #expect(UnknownCommand.editDistance("abc", "") == 3)
    }

    @Test("known commands and help pass through; near misses get the closest command")
    func messages() {
        #expect(UnknownCommand.message(for: "migrate") == nil)
        #expect(UnknownCommand.message(for: "help") == nil)
        #expect(UnknownCommand.message(for: "_child") == nil, "hidden commands are commands")
        #expect(UnknownCommand.message(for: "verison")?.contains("Did you mean 'drover version'?") == true)
        #expect(UnknownCommand.message(for: "xyzzy")?.contains("Did you mean") == false)
    }
}
