// The demo's counters: the progress it shows while running (a live line on a terminal, a
// `progress:` line a second elsewhere) and the summary that says whether anything was lost.
import { bar, count, RateMeter } from './status-line.js'

/** Counters shown in the progress lines and the summary. */
export class Tally {
  published = 0
  confirmed = 0
  publishFailed = 0
  forwarded = 0
  acked = 0
  received = 0
  /** messageIds confirmed into the source queue. */
  readonly confirmedIds = new Set<string>()
  /** messageId -> times received from the sink. */
  readonly receivedIds = new Map<string, number>()
  readonly started = performance.now()
  /** Set once the pipeline has drained: `lost` is only known then. */
  finished = false
  #lastReceived = 0
  #lastAt = this.started
  readonly #publishRate = new RateMeter()
  readonly #receiveRate = new RateMeter()

  get elapsedSeconds(): number {
    return (performance.now() - this.started) / 1000
  }

  /** Messages published and not yet received from the sink (unconfirmed, queued or being forwarded). */
  get inFlight(): number {
    return this.published - this.publishFailed - this.received
  }

  /** Every number, and the sink's rate since the previous line (plain output). */
  progressLine(): string {
    const now = performance.now()
    const rate = ((this.received - this.#lastReceived) * 1000) / Math.max(1, now - this.#lastAt)
    this.#lastReceived = this.received
    this.#lastAt = now
    return `progress: published ${this.published}, confirmed ${this.confirmed}, forwarded ${this.forwarded}, acked ${this.acked}, received ${this.received}, ${Math.round(rate)} msg/s`
  }

  /** The live line on a terminal: progress, rates, in flight, confirmed, acked, lost. */
  liveLine(total: number, paint: (text: string) => string): string {
    const s = (name: string, n: number) => `${paint(name)} ${count(n)}`
    const lost = this.finished ? count(this.lost()) : '-'
    return [
      bar(this.received, total, 12),
      `${paint('in')} ${count(this.#publishRate.rate(this.confirmed))}/s`,
      `${paint('out')} ${count(this.#receiveRate.rate(this.received))}/s`,
      s('in-flight', this.inFlight),
      s('confirmed', this.confirmed),
      s('acked', this.acked),
      `${paint('lost')} ${lost}`,
    ].join('  ')
  }

  lost(): number {
    let lost = 0
    for (const id of this.confirmedIds) if (!this.receivedIds.has(id)) lost++
    return lost
  }

  duplicated(): number {
    let duplicated = 0
    for (const times of this.receivedIds.values()) if (times > 1) duplicated++
    return duplicated
  }

  /** Every confirmed message received, and every source message acked. */
  done(): boolean {
    return this.receivedIds.size >= this.confirmed && this.acked >= this.confirmed
  }
}

/** Prints the summary; true when every confirmed message reached the sink exactly once. */
export function summary(t: Tally, interrupted: boolean, quiet: boolean): boolean {
  const elapsed = t.elapsedSeconds
  const lost = t.lost()
  const duplicated = t.duplicated()
  if (!quiet) {
    console.log(
      [
        'summary:',
        `  published  ${t.published}`,
        `  confirmed  ${t.confirmed}${t.publishFailed ? ` (${t.publishFailed} failed)` : ''}`,
        `  forwarded  ${t.forwarded}`,
        `  acked      ${t.acked}`,
        `  received   ${t.received}`,
        `  lost       ${lost}`,
        `  duplicated ${duplicated}`,
        `  elapsed    ${elapsed.toFixed(2)} s`,
        `  rate       ${Math.round(t.received / elapsed)} msg/s`,
      ].join('\n'),
    )
  }
  const ok =
    !interrupted &&
    lost === 0 &&
    duplicated === 0 &&
    t.confirmed === t.published &&
    t.received === t.confirmed &&
    t.acked === t.confirmed
  if (interrupted)
    console.log('INTERRUPTED: the counts are partial (unforwarded messages went with the queues)')
  else console.log(ok ? 'OK: every message arrived exactly once' : 'FAILED: counts do not match')
  return ok
}
