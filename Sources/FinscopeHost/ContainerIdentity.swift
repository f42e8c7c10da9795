/// The container a process runs in, from its `/proc/PID/cgroup`.
///
/// Recognised paths (cgroup v2 `0::PATH` lines and v1 `N:controllers:PATH` lines alike):
///
///     0::/system.slice/docker-<64hex>.scope                          Docker, systemd driver
///     12:pids:/docker/<64hex>                                        Docker, cgroupfs driver
///     0::/system.slice/containerd.service/… or …/cri-containerd-<64hex>.scope   containerd (CRI)
///     0::/machine.slice/libpod-<64hex>.scope                         Podman
///     0::/…/crio-<64hex>.scope                                       CRI-O
///     0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<64hex>.scope
///     11:memory:/kubepods/burstable/pod<uid>/<64hex>                 Kubernetes, cgroupfs driver
///
/// A process outside any container (`0::/user.slice/…`, `0::/init.scope`) has none.
public struct ContainerIdentity: Sendable, Hashable {
    /// The container id: 64 lowercase hex digits.
    public var id: String?
    /// The Kubernetes pod UID (with dashes), when the path is under `kubepods`.
    public var pod: String?

    public init(id: String?, pod: String?) {
        self.id = id
        self.pod = pod
    }

    static let scopePrefixes = ["docker-", "cri-containerd-", "crio-", "libpod-", "containerd-"]

    /// Parses the whole text of a `/proc/PID/cgroup` file; nil when no line names a container.
    public static func parse(cgroupFile text: String) -> ContainerIdentity? {
        for line in text.split(separator: "\n") {
            // hierarchy-ID:controller-list:path — the path may itself contain ':'.
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if let identity = parse(path: parts[2]) { return identity }
        }
        return nil
    }

    /// One cgroup path.
    public static func parse<Path: StringProtocol>(path: Path) -> ContainerIdentity? {
        let components = String(path).split(separator: "/")
        let kubernetes = components.contains { $0.hasPrefix("kubepods") }
        var id: String?
        var pod: String?
        for (index, component) in components.enumerated() {
            if kubernetes, pod == nil, let uid = podUID(component) { pod = uid; continue }
            if let hex = scopeID(component) { id = hex; continue }
            // A bare 64-hex component: under /docker/ (v1) or under a pod (kubepods cgroupfs).
            if isContainerHex(component), index > 0,
               components[index - 1] == "docker" || kubernetes {
                id = String(component)
            }
        }
        guard id != nil || pod != nil else { return nil }
        return ContainerIdentity(id: id, pod: pod)
    }

    /// `docker-<64hex>.scope` → the hex.
    static func scopeID(_ component: Substring) -> String? {
        guard component.hasSuffix(".scope") else { return nil }
        let name = component.dropLast(6)
        for prefix in scopePrefixes where name.hasPrefix(prefix) {
            let hex = name.dropFirst(prefix.count)
            if isContainerHex(hex) { return String(hex) }
        }
        return nil
    }

    /// `kubepods-burstable-pod0a1b_…_ff.slice` or `pod0a1b-…-ff` → the UID with dashes.
    static func podUID(_ component: Substring) -> String? {
        var name = component
        if name.hasSuffix(".slice") { name = name.dropLast(6) }
        guard let range = name.range(of: "pod", options: .backwards) else { return nil }
        let uid = name[range.upperBound...].replacingOccurrences(of: "_", with: "-")
        // A UID: 36 characters, hex digits and four dashes.
        guard uid.count == 36, uid.filter({ $0 == "-" }).count == 4,
              uid.allSatisfy({ $0 == "-" || $0.isHexDigit }) else { return nil }
        return uid.lowercased()
    }

    static func isContainerHex<Text: StringProtocol>(_ text: Text) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}

import Foundation
