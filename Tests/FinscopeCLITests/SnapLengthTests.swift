import Foundation
import Testing

/// `live -s/--snaplen`, as tcpdump takes it: the default 512 keeps the request head (the
/// code path); below 96 bytes not even every header fits, which is a usage error naming the
/// option (checked before any capture is opened, so no privilege is needed).
@Suite struct SnapLengthTests {
    @Test(arguments: ["50", "0", "300000"])
    func outOfRangeIsAUsageError(_ value: String) throws {
        let run = try finscope(["live", "-i", "lo", "-s", value, "--duration", "1"])
        #expect(run.status == 64)
        #expect(run.stderr.contains("-s/--snaplen must be from 96"), "\(run.stderr)")
    }

    @Test func helpShowsTheDefault() throws {
        let run = try finscope(["live", "--help"])
        #expect(run.stdout.contains("-s, --snaplen <bytes>"))
        #expect(run.stdout.contains("default: 512"))
    }
}
