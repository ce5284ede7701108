@testable import DroverRuntime
import CProcess
import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Giving back the pages a process used only to start")
struct StartupPagesTests {
    /// The resident KiB of the mapping that starts at `address`, from /proc/self/smaps.
    private func residentKiB(at address: UnsafeRawPointer) throws -> Int {
        let start = String(UInt(bitPattern: address), radix: 16)
        var inMapping = false
        let smaps = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/smaps")).readToEnd() ?? Data()
        for line in String(decoding: smaps, as: UTF8.self).split(separator: "\n") {
            let first = line.prefix { $0 != " " }
            if first.contains("-"), first.allSatisfy({ $0.isHexDigit || $0 == "-" }) {
                inMapping = first.hasPrefix(start + "-")
            } else if inMapping, line.hasPrefix("Rss:") {
                return Int(line.split(separator: " ")[1])!
            }
        }
        throw ValidationFailure("no mapping at \(start)")
    }

    /// Maps `file` (4 pages) private and read-only, having first written `written` into its first
    /// page when given; reads every page so that all are resident.
    private func map(_ path: String, writing written: UInt8? = nil) throws -> UnsafeMutableRawPointer {
        let fd = open(path, O_RDONLY)
        #expect(fd >= 0)
        defer { close(fd) }
        let size = 4 * 4096
        let protection = written == nil ? PROT_READ : PROT_READ | PROT_WRITE
        guard let address = mmap(nil, size, protection, MAP_PRIVATE, fd, 0), address != MAP_FAILED else {
            throw ValidationFailure("mmap: \(errno)")
        }
        if let written {
            address.storeBytes(of: written, as: UInt8.self)  // a private copy of the first page
            #expect(mprotect(address, size, PROT_READ) == 0)
        }
        var sum = 0
        for page in 0..<4 { sum &+= Int(address.load(fromByteOffset: page * 4096, as: UInt8.self)) }
        #expect(sum >= 0)
        return address
    }

    @Test("a read-only mapping of a file is dropped and reads the file again; one with a written page keeps it")
    func keepsWrittenPages() throws {
        let directory = try TemporaryDirectory("drover-trim")
        let contents = Data(repeating: 7, count: 4 * 4096)
        let cleanPath = directory.url.appendingPathComponent("clean").path
        let writtenPath = directory.url.appendingPathComponent("written").path
        try contents.write(to: URL(fileURLWithPath: cleanPath))
        try contents.write(to: URL(fileURLWithPath: writtenPath))
        let clean = try map(cleanPath)
        let written = try map(writtenPath, writing: 42)
        defer {
            munmap(clean, 4 * 4096)
            munmap(written, 4 * 4096)
        }
        #expect(try residentKiB(at: clean) == 16)
        #expect(try residentKiB(at: written) == 16)

        let dropped = drover_trim_file_pages()
        #expect(dropped >= 16)
        #expect(try residentKiB(at: clean) == 0, "the clean mapping's pages were dropped")
        #expect(try residentKiB(at: written) == 16, "the mapping with a written page kept every page")
        #expect(written.load(as: UInt8.self) == 42, "and the written byte")
        #expect(clean.load(fromByteOffset: 3 * 4096, as: UInt8.self) == 7, "a dropped page reads the file again")
    }

    @Test("the supervisor and its children give back their start-up pages once started, and keep working")
    func processesTrim() throws {
        let h = try SupervisorHarness(
            config: "workers:\n  - queues: [\"*\"]\n    threads: 2\ndispatchers:\n  - polling_interval: 200ms\n"
                + SupervisorHarness.fastSupervisor + "\n",
            environment: ["DROVER_LOG_LEVEL": "debug"])
        try h.waitForReady()
        // One line each: the supervisor, the worker, the dispatcher.
        func dropped() -> [Int] {
            h.log.split(separator: "\n").filter { $0.contains("msg=\"dropped start-up pages\"") }.compactMap { line in
                line.split(separator: " ").first { $0.hasPrefix("kib=") }.flatMap { Int($0.dropFirst(4)) }
            }
        }
        try waitUntil("three processes dropped their start-up pages") { dropped().count == 3 }
        #expect(dropped().allSatisfy { $0 > 1024 }, "\(dropped()) KiB")

        // The worker now holds well under its peak, and runs jobs as before.
        let worker = try #require(try h.registeredChildren().first { $0.kind == .worker })
        let status = try String(contentsOfFile: "/proc/\(worker.pid)/status", encoding: .utf8)
        func kib(_ field: String) -> Int {
            Int(status.split(separator: "\n").first { $0.hasPrefix(field + ":") }?.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        #expect(kib("VmRSS") < kib("VmHWM") - 1024, "resident \(kib("VmRSS")) KiB, peak \(kib("VmHWM")) KiB")
        let ids = try h.enqueue("drover.test.noop", count: 50)
        try h.waitUntilFinished(ids)
        #expect(try h.stop().status == 0)
    }
}
