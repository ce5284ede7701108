import DroverPersistence
import DroverQueue
import Foundation
import PropertyBased

/// One generated step: small numbers that say what to do, read against the model's state at that
/// moment (so that any sequence, however shrunk, means something). Shrinking takes steps away
/// and moves their numbers toward 0.
struct Step: Sendable, Hashable, CustomStringConvertible {
    var kind: Int
    var a: Int
    var b: Int
    var c: Int

    static let kinds = 34
    static let range = 0...7

    var description: String { "\(Step.operations[kind % Step.kinds])(\(a),\(b),\(c))" }

    /// The operation each kind stands for: the common ones more often.
    static let operations: [String] = [
        "enqueue", "enqueue", "enqueue", "enqueueUnique", "enqueueKeyed", "enqueueKeyed",
        "claim", "claim", "claim", "claim", "finish", "finish", "finish", "fail", "fail",
        "releaseGraceful", "releaseCrashed", "cancel", "cancel", "retryFailed", "discardFailed", "retryOrDiscardAll",
        "dispatch", "dispatch", "tick", "tick", "pauseOrResume", "clear", "heartbeat", "prune", "expireOrRecover", "register",
        "enqueueAfter", "enqueueBatch",
    ]

    /// Every smaller step: each number toward 0.
    static func shrinks(_ step: Step) -> [Step] {
        var smaller: [Step] = []
        for path in [\Step.kind, \Step.a, \Step.b, \Step.c] where step[keyPath: path] > 0 {
            var zero = step
            zero[keyPath: path] = 0
            smaller.append(zero)
            if step[keyPath: path] > 1 {
                var less = step
                less[keyPath: path] -= 1
                smaller.append(less)
            }
        }
        return smaller
    }
}

/// One generated case of the differential test: whether finished jobs are kept, and the steps.
struct StoreCase: Sendable, CustomStringConvertible {
    var keepFinished: Bool
    var steps: [Step]

    var description: String {
        "keepFinished=\(keepFinished), \(steps.count) steps:\n  " + steps.map(\.description).joined(separator: "\n  ")
    }

    /// Cases of `count` steps, shrinking through the library's array shrinker (one step less, or
    /// one step smaller), after first trying to drop whole halves and quarters.
    static func generator(count: ClosedRange<Int>) -> Generator<StoreCase, [StoreCase]> {
        Generator(
            run: { rng in
                let n = Int.random(in: count, using: &rng)
                let steps = (0..<n).map { _ in
                    Step(kind: Int.random(in: 0..<Step.kinds, using: &rng), a: Int.random(in: Step.range, using: &rng),
                         b: Int.random(in: Step.range, using: &rng), c: Int.random(in: Step.range, using: &rng))
                }
                return StoreCase(keepFinished: Bool.random(using: &rng), steps: steps)
            },
            shrink: { shrinks($0) })
    }

    static func shrinks(_ value: StoreCase) -> [StoreCase] {
        var smaller: [StoreCase] = []
        let steps = value.steps
        // Chunks first: a long sequence loses most of its steps in a few tries.
        for parts in [2, 4, 8] where steps.count >= parts {
            let size = steps.count / parts
            for part in 0..<parts {
                var fewer = steps
                fewer.removeSubrange(part * size..<(part == parts - 1 ? steps.count : (part + 1) * size))
                if !fewer.isEmpty { smaller.append(StoreCase(keepFinished: value.keepFinished, steps: fewer)) }
            }
        }
        smaller += Shrink.shrinkArray(steps, shrinker: Step.shrinks, lowerBound: 1).map {
            StoreCase(keepFinished: value.keepFinished, steps: $0)
        }
        if !value.keepFinished { smaller.append(StoreCase(keepFinished: true, steps: steps)) }
        return smaller
    }
}
