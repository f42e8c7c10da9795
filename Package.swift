// swift-tools-version:6.0
import PackageDescription

// Layers, bottom to top; each target imports only what is below it:
//   CPcap (libpcap) → FinscopeCapture (files, live, BPF)
//   FinscopeWire (link/IP/TCP header views) → FinscopeFlows (flow table, endpoint close state)
//   FinscopeCapture drives frames through Wire into Flows; FinscopeReport renders results;
//   finscope is the command-line front end.
let package = Package(
    name: "finscope",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "finscope", targets: ["finscope"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The Prometheus exporter (live --metrics): exposition format, and a small HTTP server without NIO.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CPcap",
            pkgConfig: "libpcap",
            providers: [.apt(["libpcap-dev"]), .brew(["libpcap"])]
        ),
        .target(name: "FinscopeWire"),
        .target(name: "FinscopeFlows", dependencies: ["FinscopeWire"]),
        .target(name: "FinscopeCapture", dependencies: ["CPcap", "FinscopeWire", "FinscopeFlows"]),
        .target(name: "FinscopeReport", dependencies: ["FinscopeFlows"]),
        // Which local process owns a socket (/proc), for live capture and --proc.
        .target(name: "FinscopeHost", dependencies: ["FinscopeFlows"]),
        // The Prometheus exporter of live mode (--metrics): plain-value snapshots, no analysis types.
        .target(
            name: "FinscopeMetrics",
            dependencies: [
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "FlyingFox", package: "FlyingFox"),
                .product(name: "FlyingSocks", package: "FlyingFox"),
            ]
        ),
        .executableTarget(
            name: "finscope",
            dependencies: [
                "FinscopeCapture", "FinscopeReport", "FinscopeFlows", "FinscopeHost", "FinscopeMetrics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Writes large synthetic captures for the benchmark (Scripts/bench).
        .executableTarget(name: "capture-gen", path: "Benchmarks/capture-gen"),
        .target(
            name: "FinscopeTestSupport",
            dependencies: ["FinscopeWire"],
            path: "Tests/FinscopeTestSupport"
        ),
        .testTarget(name: "FinscopeWireTests", dependencies: ["FinscopeWire", "FinscopeTestSupport"]),
        // Damaged captures, fuzz regressions and flow floods (docs/hostile-input.md).
        .testTarget(
            name: "FinscopeHostileTests",
            dependencies: ["FinscopeCapture", "FinscopeFlows", "FinscopeReport", "FinscopeWire", "FinscopeTestSupport"]
        ),
        .testTarget(
            name: "FinscopeFlowsTests",
            dependencies: ["FinscopeFlows", "FinscopeCapture", "FinscopeReport", "FinscopeTestSupport"]
        ),
        .testTarget(
            name: "FinscopeReplayTests",
            dependencies: ["FinscopeCapture", "FinscopeReport", "FinscopeFlows", "FinscopeTestSupport"]
        ),
        .testTarget(
            name: "FinscopeCLITests",
            dependencies: ["FinscopeTestSupport"]
        ),
        .testTarget(
            name: "FinscopeReportTests",
            dependencies: ["FinscopeCapture", "FinscopeReport", "FinscopeFlows", "FinscopeTestSupport"]
        ),
        .testTarget(
            name: "FinscopeLiveTests",
            dependencies: ["FinscopeCapture", "FinscopeHost", "FinscopeFlows", "FinscopeTestSupport"]
        ),
        // The exporter's exposition of literal snapshots (live --metrics itself: FinscopeLiveTests).
        .testTarget(
            name: "FinscopeMetricsTests",
            dependencies: ["FinscopeMetrics", "FinscopeTestSupport"]
        ),
    ]
)
