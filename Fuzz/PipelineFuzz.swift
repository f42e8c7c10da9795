// libFuzzer target: the whole offline path on arbitrary capture-file bytes.
//
// The bytes are written to a file (libpcap and the pcapng reader both open paths) and
// analyzed by `OfflineAnalysis.analyze`, exactly as `finscope analyze` does: libpcap
// first, finscope's own pcapng reader when libpcap stops on mixed interfaces, the BPF
// filter when the input's length is odd, and a small flow cap so that eviction runs.
// The JSON and text reports are rendered; invariants checked:
//   - every frame counted is a TCP segment or skipped for one reason,
//   - the JSON parses,
//   - evicted flows never exceed the flows seen,
//   - only damage may fail: a thrown error is a CaptureError.
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

let path: String = {
    let directory = ProcessInfo.processInfo.environment["FUZZ_TMPDIR"] ?? "/dev/shm"
    return "\(directory)/finscope-fuzz-\(getpid()).cap"
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPipeline(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let file = fopen(path, "wb") else { fatalError("cannot write \(path)") }
    if size > 0 { precondition(fwrite(data, 1, size, file) == size) }
    fclose(file)
    var options = AnalysisOptions(closeWaitThreshold: 1_000_000_000, maxFlows: 8)
    if size & 1 == 1 { options.filter = "tcp" }
    let result: AnalysisResult
    do {
        result = try OfflineAnalysis.analyze(paths: [path], options: options)
    } catch is CaptureError {
        return 0
    } catch {
        fatalError("unexpected error \(error)")
    }
    let source = result.source
    precondition(source.packets == source.tcpSegments + source.skipped.reduce(0, +),
                 "packets \(source.packets) != segments \(source.tcpSegments) + skipped \(source.skipped)")
    precondition(source.evicted <= result.tally.flows, "evicted more than seen")
    let json = JSONReport.render(result)
    precondition((try? JSONSerialization.jsonObject(with: Data(json.utf8))) != nil, "JSON does not parse: \(json.prefix(400))")
    _ = TextReport(showFlows: true).render(result)
    return 0
}
