import ArgumentParser
import FinscopeReport

#if canImport(Glibc)
import Glibc
import FinscopeWire
#endif

@main
struct Finscope: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finscope",
        abstract: "Explain how every TCP connection in a capture closed, and name the endpoints stuck in CLOSE_WAIT.",
        discussion: """
            A socket sits in CLOSE_WAIT when its peer sent FIN, the local TCP acknowledged it, \
            and the local program never called close(). finscope follows each connection's \
            close in a capture and names the endpoint that acknowledged its peer's FIN but \
            never sent its own: which address, which role, which peer service, how many \
            connections, for how long.
            """,
        version: FinscopeVersion.string,
        subcommands: [Analyze.self, Live.self, Interfaces.self, ProcHelper.self, KernelSockets.self],
        defaultSubcommand: Analyze.self
    )
}

/// One message for people on stderr: control characters escaped (names in it come from
/// outside), ASCII when the locale is not UTF-8.
func printError(_ message: String) {
    let line = TextCharset.local(Names.escapingControls(message)) + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}
