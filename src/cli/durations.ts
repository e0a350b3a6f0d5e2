// Durations on the command line: `500ms`, `10s`, `1m`, `2h`, or a bare number of ms, and lists of
// them separated by commas (`--retry-delays 1s,10s,1m`). Whole numbers only: a delay queue's TTL is
// a whole number of ms, and `1.5s` is better written `1500ms` than guessed at.
import { InvalidArgumentError } from 'commander'
import { UsageError } from './exit-codes.js'

const unitMs: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }

/** The longest duration: a TTL the broker takes and a timer Node can run (about 24.8 days). */
export const maxDurationMs = 2 ** 31 - 1

/** The most delays a list may hold (as many as a consumer's `retry.delays`). */
export const maxDurations = 100

/** One duration in ms: `<integer><unit>` with unit ms, s, m or h; a bare integer is ms. */
export function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h)?$/.exec(text.trim())
  if (!match) {
    throw new UsageError(
      `'${text}' is not a duration: a whole number with ms, s, m or h (e.g. 500ms, 10s, 1m)`,
    )
  }
  const ms = Number(match[1]) * (unitMs[match[2] ?? 'ms'] as number)
  if (ms < 1) throw new UsageError(`'${text}' is not a delay: at least 1 ms`)
  if (ms > maxDurationMs)
    throw new UsageError(`'${text}' is too long: at most ${maxDurationMs} ms (about 24 days)`)
  return ms
}

/** A list of durations separated by commas, in ms, in order: `1s,10s,1m` is [1000, 10000, 60000]. */
export function parseDurationList(text: string): number[] {
  const items = text.split(',')
  if (items.length > maxDurations) {
    throw new UsageError(`at most ${maxDurations} delays, got ${items.length}`)
  }
  return items.map((item) => parseDuration(item))
}

/** A commander parser for a duration: a bad one is a usage error (exit 2) naming it. */
export const durationFlag = asFlag(parseDuration)

/** A commander parser for a list of durations: a bad item is a usage error (exit 2) naming it. */
export const durationListFlag = asFlag(parseDurationList)

function asFlag<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text)
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message)
    }
  }
}

/** A duration in ms written back the short way: 60000 is `1m`, 1500 is `1500ms`. */
export function formatDuration(ms: number): string {
  for (const unit of ['h', 'm', 's'] as const) {
    const size = unitMs[unit] as number
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`
  }
  return `${ms}ms`
}
