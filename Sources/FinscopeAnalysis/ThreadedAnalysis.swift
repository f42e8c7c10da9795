import CFinscopeStream
import FinscopeCapture
import FinscopeFindings
import FinscopeFlows
import FinscopeWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The offline analysis on two threads: the calling thread reads and decodes frames (and
/// keeps the source counts), a second thread runs the flow tracker. They meet in a
/// single-producer/single-consumer ring of fixed-size records, one per TCP segment, in
/// frame order, so the tracker sees exactly the segments `--threads 1` gives it, in the
/// same order: the results are the same.
///
/// A record carries the decoded segment, its time and a pointer to its captured payload
/// (the application hints read it). The pointer stays valid because only sources whose
/// frames live to the end of the read take this path: the own pcap reader's mapping
/// (`canSplit`). No locks on the per-packet path: each side owns its index and publishes
/// it (release) every 64 records or before it waits; a side that finds the ring empty or
/// full spins briefly, then yields, then sleeps in short naps.
///
/// `AnalysisHooks.finished` runs on the tracker thread (flows leave the table there);
/// `progress` on the calling thread, with the reader's packet count.
extension OfflineAnalysis {
    /// The CPUs this process may run on (sched_getaffinity), at least 1.
    public static var usableProcessors: Int { Int(fs_usable_cpus()) }
}

enum ThreadedAnalysis {
    /// Whether every source's frames stay valid until the read ends (mapped files).
    static func canSplit(_ input: MergedFrames) -> Bool {
        !input.sources.isEmpty && input.sources.allSatisfy { $0 is PcapRecordReader }
    }

    /// One decoded segment in the ring (plain data: copying it retains nothing).
    struct Record {
        var segment: TCPSegment
        var time: Nanoseconds
        var payload: UnsafeRawPointer?
        var payloadCount: Int
    }

    static let capacity = 4096
    static let mask = capacity - 1
    static let batch = 64
    /// Index slots: the write index, the read index and the end flag, each on its own pair
    /// of cache lines (adjacent-line prefetch would otherwise make them share).
    static let headSlot = 0, tailSlot = 16, doneSlot = 32, slots = 48

    /// The reader side's state, the `sink` of its frame handler.
    struct Producer {
        var source: SourceSummary
        let records: UnsafeMutablePointer<Record>
        let control: UnsafeMutablePointer<Int>
        /// The next record to write, and the first index the ring has no room for yet.
        var written = 0
        var roomUntil = ThreadedAnalysis.capacity
    }

    /// Reads `input` into `pipeline` on two threads; returns when both are done.
    static func read(_ input: MergedFrames, into pipeline: Pipeline, progress: ((_ packets: Int) -> Void)?) {
        let records = UnsafeMutablePointer<Record>.allocate(capacity: capacity)
        records.initialize(repeating: Record(segment: TCPSegment(), time: 0, payload: nil, payloadCount: 0), count: capacity)
        let control = UnsafeMutablePointer<Int>.allocate(capacity: slots)
        control.initialize(repeating: 0, count: slots)
        defer {
            records.deallocate()
            control.deallocate()
        }
        let producer = UnsafeMutablePointer<Producer>.allocate(capacity: 1)
        producer.initialize(to: Producer(source: pipeline.source, records: records, control: control))
        defer {
            producer.deinitialize(count: 1)
            producer.deallocate()
        }

        let consumer = Consumer(pipeline: pipeline, records: records, control: control)
        var thread = pthread_t()
        let context = Unmanaged.passRetained(consumer).toOpaque()
        let started = pthread_create(&thread, nil, { context in
            let consumer = Unmanaged<Consumer>.fromOpaque(context!).takeRetainedValue()
            consumer.run()
            return nil
        }, context)
        guard started == 0 else {
            // No second thread to be had: the tracker runs here, as with --threads 1.
            Unmanaged<Consumer>.fromOpaque(context).release()
            pipeline.read(input, progress: progress.map { report in { report(pipeline.source.packets) } })
            return
        }
        let sink = UnsafeMutableRawPointer(producer)
        if let progress {
            while input.dispatch(limit: 65_536, sink: sink, handler: producerHandler) > 0 { progress(producer.pointee.source.packets) }
        } else {
            _ = input.dispatch(limit: -1, sink: sink, handler: producerHandler)
        }
        fs_atomic_store_release(control + headSlot, producer.pointee.written)
        fs_atomic_store_release(control + doneSlot, 1)
        pthread_join(thread, nil)
        pipeline.source = producer.pointee.source
    }

    /// The reader side's per-frame work: `Pipeline.decode`'s counting and decoding, with
    /// the segment pushed into the ring instead of handed to the tracker.
    static let producerHandler: FrameHandler = { sink, frame in
        let state = sink.assumingMemoryBound(to: Producer.self)
        let frame = frame.assumingMemoryBound(to: Frame.self)
        let bytes = frame.pointee.bytes
        var segment = TCPSegment()
        guard Pipeline.decode(bytes, wireLength: frame.pointee.wireLength, time: frame.pointee.time, link: frame.pointee.link,
                              matches: frame.pointee.matches, counts: &state.pointee.source, into: &segment) else { return }
        let payload = Pipeline.payload(of: segment, in: bytes)
        push(Record(segment: segment, time: frame.pointee.time, payload: payload.baseAddress, payloadCount: payload.count), state)
    }

    @inline(__always)
    static func push(_ record: Record, _ state: UnsafeMutablePointer<Producer>) {
        let index = state.pointee.written
        if index == state.pointee.roomUntil { waitForRoom(state) }
        state.pointee.records[index & mask] = record
        let next = index &+ 1
        state.pointee.written = next
        if next & (batch - 1) == 0 { fs_atomic_store_release(state.pointee.control + headSlot, next) }
    }

    @inline(never)
    static func waitForRoom(_ state: UnsafeMutablePointer<Producer>) {
        let control = state.pointee.control
        let written = state.pointee.written
        // Publish what is written first: the tracker may be waiting for exactly that.
        fs_atomic_store_release(control + headSlot, written)
        var rounds = 0
        while true {
            let read = fs_atomic_load_acquire(control + tailSlot)
            if written &- read < capacity {
                state.pointee.roomUntil = read &+ capacity
                return
            }
            pause(&rounds)
        }
    }

    /// Spin, then yield the core, then nap: the other side is busy or descheduled.
    @inline(never)
    static func pause(_ rounds: inout Int) {
        rounds += 1
        if rounds < 128 {
            fs_spin_pause()
        } else if rounds < 1_024 {
            sched_yield()
        } else {
            usleep(50)
        }
    }

    /// The tracker side: a thread of its own.
    final class Consumer: @unchecked Sendable {
        let pipeline: Pipeline
        let records: UnsafeMutablePointer<Record>
        let control: UnsafeMutablePointer<Int>

        init(pipeline: Pipeline, records: UnsafeMutablePointer<Record>, control: UnsafeMutablePointer<Int>) {
            self.pipeline = pipeline
            self.records = records
            self.control = control
        }

        func run() {
            let records = records
            let control = control
            pipeline.withTracker { tracker in
                var read = 0
                var available = 0
                while true {
                    if read == available {
                        fs_atomic_store_release(control + tailSlot, read)
                        available = Self.waitForRecords(after: read, control: control)
                        if available == read { break }
                    }
                    let record = records + (read & mask)
                    tracker.process(record.pointee.segment, at: record.pointee.time,
                                    payload: UnsafeRawBufferPointer(start: record.pointee.payload, count: record.pointee.payloadCount))
                    read &+= 1
                    if read & (batch - 1) == 0 { fs_atomic_store_release(control + tailSlot, read) }
                }
            }
        }

        /// The published write index once it is past `read`; `read` itself at the end.
        @inline(never)
        static func waitForRecords(after read: Int, control: UnsafeMutablePointer<Int>) -> Int {
            var rounds = 0
            while true {
                let head = fs_atomic_load_acquire(control + headSlot)
                if head != read { return head }
                if fs_atomic_load_acquire(control + doneSlot) != 0 {
                    return fs_atomic_load_acquire(control + headSlot)
                }
                pause(&rounds)
            }
        }
    }
}
