// swift-tools-version:6.0
import PackageDescription

// The folders follow the data; each target imports only targets below it:
//   FinscopeCapture   frame sources: libpcap files, own pcapng reader, live capture, BPF,
//                     compressed files and standard input (CPcap, CFinscopeStream, Wire)
//   FinscopeWire      decode: link/IP/TCP header views over captured bytes
//   FinscopeFlows     flow table and endpoint close state; every TCP rule (Wire)
//   FinscopeFindings  findings grouped by service, the analysis result (Flows)
//   FinscopeAnalysis  the driver: frames → segments → flows, offline, live, second pass (Capture, Flows, Findings)
//   FinscopeHost      the host's own view: sockets and their owners (Findings)
//   FinscopeReport    text, JSON, NDJSON, CSV, ladders, HTML (Findings)
//   finscope          the command line
// The per-packet path crosses Capture → Wire → Flows: in release builds their bodies are
// made available to the modules that call them (cross-module optimization), so decoding,
// flag tests and the tracker's small helpers inline into the loop instead of being calls.
// Debug and sanitizer builds (Scripts/test) are left as they are.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]

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
        // Compressed captures (gzip, zstd, xz), decompressed as they are read.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]),
        .systemLibrary(name: "CLzma", pkgConfig: "liblzma", providers: [.apt(["liblzma-dev"]), .brew(["xz"])]),
        // A byte stream over a descriptor that decompresses by magic bytes, and a stdio FILE
        // over it (glibc's fopencookie) for libpcap.
        .target(name: "CFinscopeStream", dependencies: ["CZlib", "CZstd", "CLzma"],
                linkerSettings: [.linkedLibrary("z"), .linkedLibrary("zstd"), .linkedLibrary("lzma")]),
        .target(name: "FinscopeWire", swiftSettings: hotPath),
        .target(name: "FinscopeCapture", dependencies: ["CPcap", "CFinscopeStream", "FinscopeWire"], swiftSettings: hotPath),
        .target(name: "FinscopeFlows", dependencies: ["FinscopeWire"], swiftSettings: hotPath),
        .target(name: "FinscopeFindings", dependencies: ["FinscopeFlows", "FinscopeWire"]),
        .target(name: "FinscopeAnalysis",
                dependencies: ["CPcap", "FinscopeCapture", "FinscopeWire", "FinscopeFlows", "FinscopeFindings"]),
        // Which local process owns a socket (/proc), for live capture and --proc.
        .target(name: "FinscopeHost", dependencies: ["FinscopeFindings", "FinscopeFlows", "FinscopeWire"]),
        // The Prometheus exporter of live mode (--metrics): plain-value snapshots, no analysis types.
        .target(
            name: "FinscopeMetrics",
            dependencies: [
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "FlyingFox", package: "FlyingFox"),
                .product(name: "FlyingSocks", package: "FlyingFox"),
            ]
        ),
        .target(name: "FinscopeReport", dependencies: ["FinscopeFindings", "FinscopeFlows", "FinscopeWire"]),
        .executableTarget(
            name: "finscope",
            dependencies: [
                "FinscopeCapture", "FinscopeAnalysis", "FinscopeFindings", "FinscopeReport", "FinscopeFlows",
                "FinscopeHost", "FinscopeMetrics", "FinscopeWire",
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
            dependencies: ["FinscopeCapture", "FinscopeAnalysis", "FinscopeFindings", "FinscopeFlows", "FinscopeReport", "FinscopeWire", "FinscopeTestSupport"]
        ),
        .testTarget(
            name: "FinscopeFlowsTests",
            dependencies: ["FinscopeFlows", "FinscopeCapture", "FinscopeAnalysis", "FinscopeFindings", "FinscopeReport", "FinscopeWire", "FinscopeTestSupport"]
        ),
        .testTarget(
            name: "FinscopeReplayTests",
            dependencies: ["FinscopeCapture", "FinscopeAnalysis", "FinscopeFindings", "FinscopeReport", "FinscopeFlows", "FinscopeWire", "FinscopeTestSupport"]
        ),
        .testTarget(
            name: "FinscopeCLITests",
            dependencies: ["FinscopeTestSupport"]
        ),
        .testTarget(
            name: "FinscopeReportTests",
            dependencies: ["FinscopeCapture", "FinscopeAnalysis", "FinscopeFindings", "FinscopeReport", "FinscopeFlows", "FinscopeWire", "FinscopeTestSupport"]
        ),
        .testTarget(
            name: "FinscopeLiveTests",
            dependencies: ["FinscopeCapture", "FinscopeAnalysis", "FinscopeFindings", "FinscopeHost", "FinscopeFlows", "FinscopeWire", "FinscopeTestSupport"]
        ),
        // The exporter's exposition of literal snapshots (live --metrics itself: FinscopeLiveTests).
        .testTarget(
            name: "FinscopeMetricsTests",
            dependencies: ["FinscopeMetrics", "FinscopeTestSupport"]
        ),
    ]
)
