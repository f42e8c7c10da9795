import FinscopeWire

/// The kernel's word on a finding's socket (SPEC §7): the state it holds the socket in at
/// the check, and when it was checked. A finding carrying it runs to `checkedAt`.
public struct KernelConfirmation: Sendable, Equatable, Hashable {
    /// The kernel's state name, e.g. "CLOSE_WAIT".
    public var state: String
    /// When the kernel's socket table was read.
    public var checkedAt: Nanoseconds

    public init(state: String, checkedAt: Nanoseconds) {
        self.state = state
        self.checkedAt = checkedAt
    }
}
