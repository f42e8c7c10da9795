import ArgumentParser
import FinscopeHost
import FinscopeWire

/// The privileged half of process attribution, started by `finscope live` before it drops
/// root (see AttributionHelper). Not for direct use.
struct ProcHelper: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: AttributionHelper.subcommand,
        abstract: "Internal: answers finscope live's /proc lookups while it runs without root.",
        shouldDisplay: false
    )

    func run() {
        AttributionHelper.serve()
    }
}
