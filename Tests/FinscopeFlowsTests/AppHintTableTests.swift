@testable import FinscopeFlows
import FinscopeWire
import Testing

/// The application-hint string table: each string once, bounded against traffic crafted to
/// carry a new User-Agent per connection (issue 11: memory must not grow without end).
@Suite struct AppHintTableTests {
    func intern(_ table: inout AppHintTable, _ text: String) -> UInt32 {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBytes { table.intern(UnsafeRawBufferPointer($0)) }
    }

    @Test func equalBytesShareOneIDAndReadBack() {
        var table = AppHintTable()
        let a = intern(&table, "Apache-HttpClient/4.5.14 (Java/17.0.15)")
        let b = intern(&table, "curl/7.88.1")
        #expect(a != AppHintTable.unknown && b != AppHintTable.unknown && a != b)
        #expect(intern(&table, "Apache-HttpClient/4.5.14 (Java/17.0.15)") == a)
        #expect(table.string(a) == "Apache-HttpClient/4.5.14 (Java/17.0.15)")
        #expect(table.string(b) == "curl/7.88.1")
        #expect(table.string(AppHintTable.unknown) == nil)
        // Growth of the index keeps every string findable.
        let many = (0..<5_000).map { intern(&table, "agent-\($0)") }
        #expect(Set(many).count == 5_000)
        #expect((0..<5_000).allSatisfy { intern(&table, "agent-\($0)") == many[$0] })
        #expect(table.dropped == 0)
    }

    @Test func theTableStopsGrowingAtItsBudget() {
        var table = AppHintTable()
        let filler = String(repeating: "x", count: 1_000)
        var kept = 0
        var n = 0
        // 16 MiB of 1 kB strings is about 16,800 of them; everything after is dropped.
        while n < 20_000 {
            if intern(&table, "\(n)-" + filler) != AppHintTable.unknown { kept += 1 }
            n += 1
        }
        #expect(kept < 17_000 && kept > 16_000, "kept \(kept)")
        #expect(table.dropped == 20_000 - kept)
        #expect(table.memoryBytes < 2 * AppHintTable.maximumBytes)
    }
}
