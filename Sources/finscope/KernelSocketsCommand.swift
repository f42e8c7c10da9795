import ArgumentParser
import FinscopeHost

#if canImport(Glibc)
import Glibc
#endif

/// Hidden: prints the kernel socket scan (KernelSocketTable) in the helper's line format, or
/// times it. Used by Scripts/bench-sockets and the permission tests; not for users.
struct KernelSockets: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel-sockets",
        abstract: "Internal: the kernel's TCP sockets of every network namespace (netlink sock_diag), with owners.",
        shouldDisplay: false
    )

    @Option(name: .customLong("state"), help: "A state to list (CLOSE_WAIT, ESTABLISHED, …); repeatable; default CLOSE_WAIT.")
    var states: [String] = []

    @Option(name: .customLong("netns"), help: "Read only the namespace at this nsfs path (repeatable); default: every namespace.")
    var namespaces: [String] = []

    @Flag(help: "Read only finscope's own network namespace.")
    var current = false

    @Option(help: "automatic, netlink or proc.")
    var source = "automatic"

    @Flag(help: "Do not look up owners in /proc/PID/fd.")
    var noOwners = false

    @Option(help: "Time the read this many times; print the best on stderr and only the count on stdout.")
    var time: Int = 0

    func run() throws {
        var wanted: Set<KernelTCPState> = []
        for name in states {
            guard let state = KernelTCPState(name: name.uppercased().replacingOccurrences(of: "-", with: "_")) else {
                throw ValidationError("unknown TCP state '\(name)'")
            }
            wanted.insert(state)
        }
        if wanted.isEmpty { wanted = [.closeWait] }
        let selection: NamespaceSelection = current ? .current : namespaces.isEmpty ? .all : .paths(namespaces)
        let chosen: KernelSocketTable.Source
        switch source {
        case "automatic": chosen = .automatic
        case "netlink": chosen = .netlink
        case "proc": chosen = .procNetTCP
        default: throw ValidationError("--source must be automatic, netlink or proc")
        }
        func scan() throws -> KernelScan {
            try KernelSocketTable.read(states: wanted, namespaces: selection, owners: !noOwners, source: chosen)
        }
        guard time > 0 else {
            print(try scan().encoded(), terminator: "")
            return
        }
        var best = Double.infinity
        var count = 0
        for _ in 0..<time {
            var start = timespec(), end = timespec()
            clock_gettime(CLOCK_MONOTONIC, &start)
            let result = try scan()
            clock_gettime(CLOCK_MONOTONIC, &end)
            count = result.sockets.count
            best = min(best, Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) / 1e9)
        }
        print("\(count) \(best)")
    }
}
