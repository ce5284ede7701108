import ArgumentParser
import Foundation

/// Drover's entry points.
///
/// The `drover` binary is `Drover.main()`. An application that embeds Drover calls it from its own
/// `main` to give its executable the whole command line.
public enum Drover {
    /// This release.
    public static let version = "0.1.0"

    /// Runs the `drover` command line with `arguments` (default: the process's) and exits.
    public static func main(_ arguments: [String]? = nil) -> Never {
        DroverCommand.main(arguments)
        exit(0)
    }
}
