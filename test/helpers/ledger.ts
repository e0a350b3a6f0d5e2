// The ledger: the accounting every fault test keeps (after the `total-queue`
// checker of RabbitMQ's Jepsen suite). Every test message carries a unique id (its messageId). The
// test records each publish attempt and its one final outcome, each delivery, what draining every
// queue found at the end and, for pipelines (consume A → publish B → ack A), when each A ack and B
// confirm happened. report() turns that into the figures a test asserts on.
//
//   const ledger = new Ledger()
//   ledger.attempt(id)
//   publisher.send(...).then(() => ledger.outcome(id, 'confirmed'), (err) => ledger.outcome(id, kind(err)))
//   consumer: ledger.delivered(id, { redelivered: msg.fields.redelivered, queue })
//             (a delivery whose task failed and whose message goes on along a retry ladder: `retried: true`)
//   end:      ledger.finalContents(queue, (await drainQueue(queue)).map(idOf))
//   ledger.print('kill -9 during publish'); ledger.assertSound({ maxDuplicated: inFlight * faults })
import { AssertionError } from 'node:assert'
import { performance } from 'node:perf_hooks'

/** How a publish attempt ended, as the caller saw it. */
export type PublishOutcome =
  | 'confirmed' // the broker confirmed it (basic.ack)
  | 'returned' // unroutable, returned (mandatory)
  | 'nacked' // the broker refused it (basic.nack)
  | 'rejected' // the library failed the call with a typed error before or instead of sending
  | 'indeterminate' // timed out or connection lost before any answer: it may or may not be stored

/** A point in the recording order: `seq` orders events exactly, `at` is performance.now(). */
export interface Stamp {
  seq: number
  at: number
}

export interface Delivery extends Stamp {
  queue: string
  redelivered: boolean
  /** The task failed and the message went on to be retried: this delivery did not end it. */
  retried: boolean
}

interface Attempt extends Stamp {
  outcome?: PublishOutcome
}

/** The figures. Each count has its ids (all of them) in `ids`. */
export interface LedgerReport {
  /** Distinct ids attempted (a retry of the same id counts once). */
  attempted: number
  /** Distinct ids with at least one confirmed attempt. */
  confirmed: number
  /** Distinct ids by the outcome of their last attempt. */
  outcomes: Record<PublishOutcome, number>
  /** Distinct ids delivered at least once. */
  delivered: number
  /** Every delivery recorded, redeliveries included. */
  deliveries: number
  /** Deliveries flagged redelivered by the broker. */
  redelivered: number
  /** Deliveries whose task failed and whose message went on to be retried (they end nothing). */
  retried: number
  /** Distinct ids found in some queue by the final drain. */
  remaining: number
  /**
   * Confirmed, but never delivered (a retried delivery does not count: the message must turn up
   * again) and not in any queue at the end. Must be 0.
   */
  lost: number
  /** Delivered or found at the end, but never attempted. Must be 0. */
  unexpected: number
  /** Attempted, and the last attempt has no outcome yet. Must be 0. */
  hung: number
  /**
   * Delivered more than once from the same queue (retried deliveries left out: a retried message
   * comes back on purpose), or found twice in one queue at the end. Bounded.
   */
  duplicated: number
  /** Never confirmed, some attempt indeterminate or rejected, yet delivered or found at the end. */
  recovered: number
  /** An outcome recorded for an attempt that already had one (a callback run twice). Must be 0. */
  settledTwice: number
  /** Pipelines: source messages acked. */
  ackedSource: number
  /** Pipelines: acked in the source before (or without) their downstream confirm. Must be 0. */
  ackedBeforeConfirm: number
  /** Pipelines: acked in the source, yet never delivered from or found in the downstream queue. Must be 0. */
  ackedButMissing: number
  ids: {
    lost: string[]
    unexpected: string[]
    hung: string[]
    duplicated: string[]
    recovered: string[]
    settledTwice: string[]
    ackedBeforeConfirm: string[]
    ackedButMissing: string[]
  }
}

export class Ledger {
  readonly #attempts = new Map<string, Attempt[]>()
  readonly #settledTwice = new Set<string>()
  readonly #deliveries = new Map<string, Delivery[]>()
  readonly #final = new Map<string, string[]>()
  readonly #acked = new Map<string, Stamp>()
  readonly #confirmedDownstream = new Map<string, Stamp & { queue: string | undefined }>()
  #seq = 0

  #stamp(): Stamp {
    return { seq: ++this.#seq, at: performance.now() }
  }

  /** Records a publish attempt. The same id may be attempted again once the previous attempt has an outcome. */
  attempt(id: string): void {
    const attempts = this.#attempts.get(id) ?? []
    if (attempts.length > 0 && attempts[attempts.length - 1]?.outcome === undefined) {
      throw new RangeError(`ledger: '${id}' attempted again while its previous attempt has no outcome`)
    }
    attempts.push(this.#stamp())
    this.#attempts.set(id, attempts)
  }

  /** Records how the pending attempt of `id` ended. A second outcome for it is counted as settledTwice. */
  outcome(id: string, kind: PublishOutcome): void {
    const attempts = this.#attempts.get(id)
    if (!attempts) throw new RangeError(`ledger: outcome '${kind}' for '${id}', which was never attempted`)
    const pending = attempts.find((a) => a.outcome === undefined)
    if (pending) pending.outcome = kind
    else this.#settledTwice.add(id)
  }

  /**
   * Records a delivery of `id` from `queue` to a consumer. `retried`: its task failed and the
   * message went on along a retry ladder (or back to the queue): it must be delivered again, or be
   * in some queue at the end, to count as not lost.
   */
  delivered(id: string, delivery: { redelivered: boolean; queue: string; retried?: boolean }): void {
    const list = this.#deliveries.get(id) ?? []
    list.push({
      ...this.#stamp(),
      queue: delivery.queue,
      redelivered: delivery.redelivered,
      retried: delivery.retried ?? false,
    })
    this.#deliveries.set(id, list)
  }

  /** Records what draining `queue` found at the end (call once per queue, dead-letter queues included). */
  finalContents(queue: string, ids: readonly string[]): void {
    this.#final.set(queue, [...(this.#final.get(queue) ?? []), ...ids])
  }

  /** Pipelines: the source (A) message `id` was acked. */
  ackedSource(id: string): void {
    this.#acked.set(id, this.#stamp())
  }

  /** Pipelines: the downstream (B) publish for `id` was confirmed; `queue` is where it went, if known. */
  confirmedDownstream(id: string, queue?: string): void {
    if (!this.#confirmedDownstream.has(id)) this.#confirmedDownstream.set(id, { ...this.#stamp(), queue })
  }

  /** The deliveries recorded for `id`, in order. */
  deliveriesOf(id: string): readonly Delivery[] {
    return this.#deliveries.get(id) ?? []
  }

  report(): LedgerReport {
    const inQueues = new Set<string>()
    const duplicated = new Set<string>()
    for (const ids of this.#final.values()) {
      const seen = new Set<string>()
      for (const id of ids) {
        if (seen.has(id)) duplicated.add(id)
        seen.add(id)
        inQueues.add(id)
      }
    }
    let deliveries = 0
    let redelivered = 0
    let retried = 0
    for (const [id, list] of this.#deliveries) {
      deliveries += list.length
      redelivered += list.filter((d) => d.redelivered).length
      retried += list.filter((d) => d.retried).length
      const queues = list.filter((d) => !d.retried).map((d) => d.queue)
      if (new Set(queues).size < queues.length) duplicated.add(id)
    }
    const seen = (id: string): boolean => this.#deliveries.has(id) || inQueues.has(id)
    // A message retried after its last delivery is still on its way: only a delivery that ended it,
    // or a queue holding it at the end, accounts for it.
    const accounted = (id: string): boolean =>
      (this.#deliveries.get(id) ?? []).some((d) => !d.retried) || inQueues.has(id)
    const outcomes: Record<PublishOutcome, number> = {
      confirmed: 0,
      returned: 0,
      nacked: 0,
      rejected: 0,
      indeterminate: 0,
    }
    const confirmed: string[] = []
    const hung: string[] = []
    const recovered: string[] = []
    for (const [id, attempts] of this.#attempts) {
      const last = attempts[attempts.length - 1]?.outcome
      if (last === undefined) hung.push(id)
      else outcomes[last]++
      const kinds = new Set(attempts.map((a) => a.outcome))
      if (kinds.has('confirmed')) confirmed.push(id)
      else if ((kinds.has('indeterminate') || kinds.has('rejected')) && seen(id)) recovered.push(id)
    }
    const unexpected = [...new Set([...this.#deliveries.keys(), ...inQueues])].filter(
      (id) => !this.#attempts.has(id),
    )
    const downstreamQueues = new Set(
      [...this.#confirmedDownstream.values()].map((c) => c.queue).filter((q) => q !== undefined),
    )
    const foundIn = (id: string, queues: ReadonlySet<string>): boolean =>
      (this.#deliveries.get(id) ?? []).some((d) => queues.has(d.queue)) ||
      [...queues].some((q) => this.#final.get(q)?.includes(id))
    const ackedBeforeConfirm: string[] = []
    const ackedButMissing: string[] = []
    for (const [id, ack] of this.#acked) {
      const confirm = this.#confirmedDownstream.get(id)
      if (!confirm || confirm.seq > ack.seq) ackedBeforeConfirm.push(id)
      const queues = confirm?.queue !== undefined ? new Set([confirm.queue]) : downstreamQueues
      if (queues.size > 0 && !foundIn(id, queues)) ackedButMissing.push(id)
    }
    const lost = confirmed.filter((id) => !accounted(id))
    return {
      attempted: this.#attempts.size,
      confirmed: confirmed.length,
      outcomes,
      delivered: this.#deliveries.size,
      deliveries,
      redelivered,
      retried,
      remaining: inQueues.size,
      lost: lost.length,
      unexpected: unexpected.length,
      hung: hung.length,
      duplicated: duplicated.size,
      recovered: recovered.length,
      settledTwice: this.#settledTwice.size,
      ackedSource: this.#acked.size,
      ackedBeforeConfirm: ackedBeforeConfirm.length,
      ackedButMissing: ackedButMissing.length,
      ids: {
        lost,
        unexpected,
        hung,
        duplicated: [...duplicated],
        recovered,
        settledTwice: [...this.#settledTwice],
        ackedBeforeConfirm,
        ackedButMissing,
      },
    }
  }

  /** The figures as one readable block. */
  format(label: string, report = this.report(), withIds = true): string {
    const r = report
    const o = r.outcomes
    const lines = [
      `ledger: ${label}`,
      `  attempted ${r.attempted}: confirmed ${o.confirmed}, returned ${o.returned}, nacked ${o.nacked}, ` +
        `rejected ${o.rejected}, indeterminate ${o.indeterminate}, hung ${r.hung} (ever confirmed ${r.confirmed})`,
      `  delivered ${r.delivered} ids in ${r.deliveries} deliveries (${r.redelivered} redelivered` +
        `${r.retried > 0 ? `, ${r.retried} retried` : ''}); ` +
        `${r.remaining} ids left in queues at the end`,
      `  lost ${r.lost}  unexpected ${r.unexpected}  hung ${r.hung}  duplicated ${r.duplicated}  ` +
        `recovered ${r.recovered}  settled twice ${r.settledTwice}`,
    ]
    if (r.ackedSource > 0) {
      lines.push(
        `  pipeline: acked ${r.ackedSource}, acked before downstream confirm ${r.ackedBeforeConfirm}, ` +
          `acked but missing downstream ${r.ackedButMissing}`,
      )
    }
    for (const [figure, ids] of Object.entries(r.ids)) {
      if (withIds && ids.length > 0) lines.push(`  ${figure}: ${examples(ids)}`)
    }
    return lines.join('\n')
  }

  /** Writes the figures to stderr (shown with the test output). */
  print(label: string): LedgerReport {
    const report = this.report()
    process.stderr.write(`\n${this.format(label, report)}\n`)
    return report
  }

  /**
   * Fails unless nothing was lost, unexpected, hung, settled twice or acked ahead of its downstream
   * confirm, and duplicates stay within `maxDuplicated`. Returns the report.
   */
  assertSound(options: { maxDuplicated?: number } = {}): LedgerReport {
    const report = this.report()
    const maxDuplicated = options.maxDuplicated ?? 0
    const problems: string[] = []
    const mustBeZero = [
      'lost',
      'unexpected',
      'hung',
      'settledTwice',
      'ackedBeforeConfirm',
      'ackedButMissing',
    ] as const
    for (const figure of mustBeZero) {
      if (report[figure] > 0)
        problems.push(`${figure} ${report[figure]} (must be 0): ${examples(report.ids[figure])}`)
    }
    if (report.duplicated > maxDuplicated) {
      problems.push(
        `duplicated ${report.duplicated} (at most ${maxDuplicated} allowed): ${examples(report.ids.duplicated)}`,
      )
    }
    if (problems.length > 0) {
      throw new AssertionError({
        message: `the ledger is not sound:\n  ${problems.join('\n  ')}\n${this.format('figures', report, false)}`,
        actual: report,
        operator: 'assertSound',
      })
    }
    return report
  }
}

function examples(ids: readonly string[], max = 10): string {
  const shown = ids.slice(0, max).join(', ')
  return ids.length > max ? `${shown} ... (${ids.length - max} more)` : shown
}
