// The models the results are held against (what the broker and the round trip allow), fed by a calibration with the raw
// client (the local round trip of a cheap method, and of a confirmed publish) and by S0's ceilings
// measured in the same run.
import { randomBytes } from 'node:crypto'
import { flags, type Variant } from './common.ts'
import { RawClient } from './raw-client.ts'

export interface Calibration {
  /** p50 round trip of basic.qos → qos-ok, ms: the network plus the broker's least work. */
  pingMs: number
  /** p50 publish → confirm with one message in flight, ms. */
  confirmP50Ms: number
  /**
   * Mean publish → confirm with one message in flight, ms: "round trip + broker time" of the
   * models (1 / mean is the rate a client without overhead gets, scheduling hiccups included).
   */
  confirmMs: number
  /** The same for persistent messages (full mode): the broker's fsync is in it. */
  confirmPersistentMs?: number
  /** S8: the round trip measured through the proxy (basic.qos p50), by variant label. */
  linkRttMs: Record<string, number>
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b)
  return s[s.length >> 1] ?? Number.NaN
}

/** Mean and p50 publish → confirm time (ms), one in flight, `n` messages; checks the counts. */
async function syncConfirms(client: RawClient, queue: string, persistent: boolean, n: number) {
  const confirms: number[] = []
  client.onConfirm = (ms) => confirms.push(ms)
  const before = client.counts.acked
  const one = client.encodePublish(queue, Buffer.alloc(flags.size, 'x'), { persistent, mandatory: true })
  for (let i = 0; i < n; i++) {
    client.write(one, one.length, 1)
    await client.waitForConfirms(0)
  }
  const depth = await client.declare(queue, { durable: true, passive: true })
  if (client.counts.acked - before !== n || depth !== client.counts.acked || client.counts.returned !== 0) {
    throw new Error(`raw client self-check failed: ${JSON.stringify(client.counts)}, queue depth ${depth}`)
  }
  return { mean: confirms.reduce((a, b) => a + b, 0) / confirms.length, p50: median(confirms) }
}

/**
 * About half a second of round trips with the raw client on a fresh, deleted-after queue (a
 * second more with `persistent`). Also the raw client's self-check: confirmed = published = depth.
 */
export async function calibrate(url: string, persistent: boolean): Promise<Calibration> {
  const client = await RawClient.connect(url)
  const queue = `bench-calibrate-${randomBytes(4).toString('hex')}`
  try {
    const pings: number[] = []
    for (let i = 0; i < 300; i++) pings.push(await client.ping())
    await client.declare(queue, { durable: true })
    await client.confirmSelect()
    const transient = await syncConfirms(client, queue, false, 2000)
    const durable = persistent ? await syncConfirms(client, queue, true, 1000) : undefined
    await client.deleteQueue(queue)
    return {
      pingMs: median(pings),
      confirmP50Ms: transient.p50,
      confirmMs: transient.mean,
      ...(durable ? { confirmPersistentMs: durable.mean } : {}),
      linkRttMs: {},
    }
  } finally {
    await client.close()
  }
}

/** p50 round trip (ms) of basic.qos through `url` (the delaying proxy in S8). */
export async function measureRtt(url: string): Promise<number> {
  const client = await RawClient.connect(url)
  try {
    const pings: number[] = []
    for (let i = 0; i < 15; i++) pings.push(await client.ping())
    return median(pings)
  } finally {
    await client.close()
  }
}

/** The broker's ceilings from S0 (msg/s), when S0 ran. */
export interface Ceilings {
  /** No confirms, transient, 100 B. */
  unconfirmed?: number
  /** Window 1000, transient, 100 B. */
  confirmed?: number
}

const taskMs = { noop: 0, async: 1, cpu: 1 } as const

/** The model's prediction for a scenario's variant in msg/s, or undefined where none applies. */
export function predict(scenario: string, v: Variant, cal: Calibration, ceil: Ceilings): number | undefined {
  const rt = ((v.persistent && cal.confirmPersistentMs) || cal.confirmMs) / 1000
  // Without the ceiling (S0 not run) a capped model has no prediction.
  const capped = (x: number, c: number | undefined) => (c === undefined ? undefined : Math.min(x, c))
  switch (scenario) {
    case 'S2':
      return 1 / rt
    case 'S3':
      return v.window === 1 ? 1 / rt : capped(v.window / rt, ceil.confirmed)
    case 'S11':
      // The happy path is S5's consumer; a fixed rate is its own model; failures have none.
      if (v.rate !== undefined) return v.rate
      return v.failEvery ? undefined : predict('S5', v, cal, ceil)
    case 'S5': {
      // min(C / t, P / (t + round trip), ceiling); CPU-bound tasks run one at a time (C = 1).
      const t = taskMs[v.task ?? 'noop'] / 1000
      const c = v.task === 'cpu' ? 1 : v.prefetch
      return capped(
        Math.min(t > 0 ? c / t : Number.POSITIVE_INFINITY, v.prefetch / (t + rt)),
        ceil.unconfirmed,
      )
    }
    case 'S6':
      return v.rate
    case 'S7':
      // P / (t + round trip + downstream confirm), t = 0; a sync publisher has 1 in flight.
      if (v.publisher === 'sync') return 1 / rt
      return capped(v.prefetch / (2 * rt), ceil.confirmed === undefined ? undefined : ceil.confirmed / 2)
    case 'S8': {
      // The proxy's measured round trip (timers are coarse), plus the broker's confirm time.
      const measured = cal.linkRttMs[v.label]
      const link =
        (measured === undefined ? (v.rttMs ?? 0) + cal.confirmMs : measured - cal.pingMs + cal.confirmMs) /
        1000
      return v.publisher === 'sync' ? 1 / link : capped(v.window / link, ceil.confirmed)
    }
    default:
      return undefined
  }
}

/** How each model was computed, for the report. */
export const modelNotes = [
  'S2: 1 / (local round trip + broker time); "that time" (below too) is 1 / the raw client\'s S2 rate in the same rounds (no client overhead), else the mean sync confirm time at calibration.',
  'S3: min(W / that time, S0 ceiling with window 1000).',
  "S5: min(C / t, P / (t + that time), S0 unconfirmed ceiling as a stand-in for the queue's); C = P for the no-op and timer tasks, 1 for the CPU task.",
  'S6: the fixed rate itself.',
  'S7: P / (2 × that time) (delivery + ack round trip, then the downstream confirm), capped at half the S0 confirmed ceiling (each message is consumed and published); sync publisher: 1 / that time.',
  'S8: sync 1 / (RTT + that time); async min(W / (RTT + that time), S0 confirmed ceiling); RTT = the basic.qos round trip measured through the proxy, minus the local one.',
  "S11: the happy path is S5's model; at a fixed rate, the rate itself; none with failures.",
  'Persistent variants use that time for persistent messages (S2 persistent, full mode).',
]
