import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// The rate limiter's policy, with no database: a table of decisions, then random bursts, claim
/// sizes and lateness against the promises (never more than the limit in any window, a time for
/// every job that waits, no herd, everything starts). A fixed seed by default;
/// `DROVER_RATE_SEED=n` (or `random`) and `DROVER_RATE_CASES=n` for more; the seed is in every
/// failure.
@Suite("Rate limiter: the decision, and random bursts against its promises")
struct RateLimiterTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let fresh = RateLimiter.Candidate(waited: false)
    static let waited = RateLimiter.Candidate(waited: true)

    @Test("Under the limit new jobs start; past it each waits its turn, in batches of the limit a window (and a margin) apart")
    func burst() {
        var state = RateLimiter.KeyState(starts: [], waiting: [])
        let decisions = RateLimiter.decide(Array(repeating: Self.fresh, count: 25), limit: 10, period: 1, now: Self.t0, state: &state)
        #expect(decisions.prefix(10).allSatisfy { $0 == .start })
        // The window is the period and its guard (1.1 s), the batches a margin more apart.
        #expect(decisions[10..<20].allSatisfy { $0 == .wait(until: Self.t0.addingTimeInterval(1.12)) })
        #expect(decisions[20..<25].allSatisfy { $0 == .wait(until: Self.t0.addingTimeInterval(2.24)) })
        #expect(state.starts.count == 10 && state.waiting.count == 15)
    }

    @Test("A new job waits behind the line even when the starts alone would let it through; a waited job is judged by the starts only")
    func line() {
        // 3 starts, 8 jobs given times in the next period: a new one would crowd them.
        let now = Self.t0.addingTimeInterval(10)
        var state = RateLimiter.KeyState(
            starts: [now.addingTimeInterval(-0.5), now.addingTimeInterval(-0.4), now.addingTimeInterval(-0.3)],
            waiting: (1...8).map { _ in now.addingTimeInterval(0.5) })
        var copy = state
        #expect(RateLimiter.decide([Self.fresh], limit: 10, period: 1, now: now, state: &state) != [.start])
        // The same job, given a time before, starts: 3 starts in the window.
        #expect(RateLimiter.decide([Self.waited], limit: 10, period: 1, now: now, state: &copy) == [.start])
        // Given times long past the window and starts before it count for nothing.
        var old = RateLimiter.KeyState(starts: (1...10).map { _ in now.addingTimeInterval(-1.1) }, waiting: [now.addingTimeInterval(-5)])
        #expect(RateLimiter.decide([Self.fresh], limit: 10, period: 1, now: now, state: &old) == [.start])
        // A read cut at the limit: a new job does not start ahead of a line it cannot see whole.
        var cut = RateLimiter.KeyState(starts: [], waiting: [now.addingTimeInterval(0.2), now.addingTimeInterval(30)], waitingCut: true)
        #expect(RateLimiter.decide([Self.fresh], limit: 2, period: 1, now: now, state: &cut) != [.start])
    }

    @Test("A waited job that comes late into a full window goes to the end of the line; several such go in batches, not together")
    func late() {
        let now = Self.t0.addingTimeInterval(5)
        let starts = (0..<10).map { now.addingTimeInterval(-0.9 + Double($0) * 0.01) }
        let line = (0..<20).map { now.addingTimeInterval($0 < 10 ? 0.5 : 1.52) }
        var state = RateLimiter.KeyState(starts: starts, waiting: line)
        let decisions = RateLimiter.decide(Array(repeating: Self.waited, count: 12), limit: 10, period: 1, now: now, state: &state)
        let step = 1.12
        #expect(decisions.prefix(10).allSatisfy { $0 == .wait(until: now.addingTimeInterval(1.52 + step)) })
        #expect(decisions.suffix(2).allSatisfy { $0 == .wait(until: now.addingTimeInterval(1.52 + 2 * step)) })
    }

    @Test("The guard: 10 % of the period, at most 250 ms; the margin: 2 %, at most 100 ms")
    func margin() {
        #expect(RateLimiter.guardTime(period: 1) == 0.1 && RateLimiter.window(period: 1) == 1.1)
        #expect(RateLimiter.guardTime(period: 60) == 0.25 && RateLimiter.window(period: 60) == 60.25)
        #expect(RateLimiter.margin(period: 1) == 0.02)
        #expect(RateLimiter.margin(period: 60) == 0.1)
        #expect(RateLimiter.margin(period: 7 * 86_400) == 0.1)
    }

    // MARK: Random bursts

    typealias Generator = SplitMix

    static let environment = ProcessInfo.processInfo.environment
    static let seed: UInt64 = {
        switch environment["DROVER_RATE_SEED"] {
        case "random": return UInt64.random(in: 1 ... .max)
        case let text?: return UInt64(text) ?? 20_261_202
        case nil: return 20_261_202
        }
    }()
    static let cases = environment["DROVER_RATE_CASES"].flatMap { Int($0) } ?? 300

    /// What one simulated key went through.
    struct Run {
        var starts: [Date] = []
        var given: [[Date]] = []  // the line after each claim
        var waitedTimes: [Int: Int] = [:]
        var problems: [String] = []
        var unstarted = 0
    }

    /// Jobs arrive in bursts; claims of random sizes take the waiting jobs whose time came (each
    /// `lateness` after it, as the dispatcher and a busy worker make them) and new ones; the
    /// state each claim sees is what the store reads (the latest `limit` of each kind).
    static func simulate(
        limit: Int, period: Double, jobs: Int, punctual: Bool, lateness: ClosedRange<Double>, using g: inout Generator
    ) -> Run {
        var run = Run()
        var now = t0
        var arrived = 0
        var fresh: [Int] = []
        var waiting: [Int: (at: Date, claimable: Date)] = [:]
        var steps = 0
        while arrived < jobs || !fresh.isEmpty || !waiting.isEmpty {
            steps += 1
            if steps > 200_000 {
                run.problems.append("not done after \(steps) claims: \(fresh.count) new and \(waiting.count) waiting jobs left")
                run.unstarted = fresh.count + waiting.count
                break
            }
            // Punctual: a claim comes at each waiting job's time (the dispatcher wakes then and
            // the workers claim at once), and between them as jobs arrive.
            let step = now.addingTimeInterval(Double.random(in: 0...(period / 4), using: &g))
            let nextClaimable = waiting.values.map(\.claimable).min()
            now = punctual ? min(step, nextClaimable.map { max($0, now) } ?? step) : step
            if arrived < jobs, Int.random(in: 0..<4, using: &g) == 0 {
                let burst = min(jobs - arrived, Int.random(in: 1...(3 * limit), using: &g))
                fresh += arrived..<(arrived + burst)
                arrived += burst
            }
            let due = waiting.filter { $0.value.claimable <= now }.sorted { ($0.value.at, $0.key) < ($1.value.at, $1.key) }.map(\.key)
            let size = punctual ? Int.max : Int.random(in: 1...(2 * limit + 1), using: &g)
            let takenDue = Array(due.prefix(size))
            let takenFresh = Array(fresh.prefix(size == .max ? fresh.count : size - takenDue.count))
            fresh.removeFirst(takenFresh.count)
            for id in takenDue { waiting[id] = nil }
            let windowStart = now.addingTimeInterval(-RateLimiter.window(period: period))
            let given = waiting.values.map(\.at).filter { $0 > windowStart }.sorted(by: >)
            var state = RateLimiter.KeyState(
                starts: Array(run.starts.filter { $0 > windowStart }.sorted(by: >).prefix(limit)),
                waiting: Array(given.prefix(limit)), waitingCut: given.count >= limit)
            let candidates = takenDue.map { _ in Self.waited } + takenFresh.map { _ in Self.fresh }
            let decisions = RateLimiter.decide(candidates, limit: limit, period: period, now: now, state: &state)
            for (id, decision) in zip(takenDue + takenFresh, decisions) {
                switch decision {
                case .start:
                    run.starts.append(now)
                case .wait(let at):
                    if at < now { run.problems.append("job \(id) was given \(at), before now \(now)") }
                    run.waitedTimes[id, default: 0] += 1
                    waiting[id] = (at, at.addingTimeInterval(Double.random(in: lateness, using: &g)))
                }
            }
            run.given.append(waiting.values.map(\.at).sorted())
        }
        return run
    }

    /// The most starts in any window `(t - period, t]`: the busiest window ends at a start.
    static func busiestWindow(_ times: [Date], period: Double) -> Int {
        let sorted = times.sorted()
        var busiest = 0
        var first = 0
        for (index, time) in sorted.enumerated() {
            while sorted[first] <= time.addingTimeInterval(-period) { first += 1 }
            busiest = max(busiest, index - first + 1)
        }
        return busiest
    }

    @Test("Random bursts, claim sizes and lateness: at most the limit in any window, every job starts, no herd, and on-time jobs wait once")
    func randomBursts() {
        var g = Generator(state: Self.seed)
        for index in 0..<Self.cases {
            let limit = [1, 2, 3, 5, 10, 50][Int.random(in: 0..<6, using: &g)]
            let period = [1.0, 2.5, 60][Int.random(in: 0..<3, using: &g)]
            let punctual = Bool.random(using: &g)
            let lateness = punctual ? 0...(RateLimiter.margin(period: period) / 2) : 0...(3 * period)
            let jobs = Int.random(in: 1...(8 * limit + 20), using: &g)
            let what = "case \(index) (seed \(Self.seed); rerun with DROVER_RATE_SEED=\(Self.seed)): limit \(limit) per \(period) s, "
                + "\(jobs) jobs, lateness up to \(lateness.upperBound) s"
            let run = Self.simulate(limit: limit, period: period, jobs: jobs, punctual: punctual, lateness: lateness, using: &g)
            #expect(run.problems.isEmpty, "\(what): \(run.problems.prefix(3))")
            #expect(run.starts.count == jobs, "\(what): \(run.starts.count) started")
            let window = RateLimiter.window(period: period)
            let busiest = Self.busiestWindow(run.starts, period: window)
            #expect(busiest <= limit, "\(what): \(busiest) starts in one window")
            // No herd: the line never holds more than the limit's worth of times in any window.
            let crowded = run.given.map { Self.busiestWindow($0, period: window) }.max() ?? 0
            #expect(crowded <= limit, "\(what): \(crowded) waiting jobs given times in one window")
            if punctual {
                let twice = run.waitedTimes.filter { $0.value > 1 }
                #expect(twice.isEmpty, "\(what): on time, yet \(twice.count) jobs waited more than once")
            }
            if run.problems.isEmpty == false || busiest > limit { break }
        }
    }
}
