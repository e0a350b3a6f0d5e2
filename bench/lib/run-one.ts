// One measured run: fresh queue(s), prefill, the peer between its marks, the broker's counts
// checked after the peer closed, queues deleted.
import { randomBytes } from 'node:crypto'
import type { Admin } from './admin.ts'
import {
  bodyOf,
  flags,
  newCounts,
  type PeerRun,
  type RunContext,
  type Scenario,
  type Variant,
} from './common.ts'
import { createMarks } from './measure.ts'
import type { RunResult } from './summary.ts'

const runTimeoutMs = 180_000

export interface RunEnv {
  admin: Admin
  brokerPid: number | undefined
  /** Where peers connect (the delaying proxy's URL in S8). */
  url: string
}

export async function runOne(
  env: RunEnv,
  scenario: Scenario,
  peerName: string,
  peer: PeerRun,
  variant: Variant,
  round: number,
): Promise<RunResult> {
  const { admin } = env
  const tag = `${scenario.id}-${peerName.replace(/\W/g, '')}-${randomBytes(4).toString('hex')}`
  const queue = `bench-${tag}-a`
  const sink = `bench-${tag}-b`
  const marks = createMarks(env.brokerPid)
  const counts = newCounts()
  const prefilled = scenario.prefill(variant)
  const ctx: RunContext = {
    ...variant,
    queue,
    sink,
    url: env.url,
    body: bodyOf(variant.size ?? flags.size),
    persistent: variant.persistent ?? flags.persistent,
    count: prefilled,
    marks,
    counts,
    rss: [],
  }
  let left = Number.NaN
  let inSink = Number.NaN
  let error: string | undefined
  try {
    await admin.declare(queue, variant.queueArgs)
    if (scenario.sink) await admin.declare(sink)
    if (prefilled > 0) await admin.prefill(queue, prefilled)
    ;(globalThis as { gc?: () => void }).gc?.()
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${runTimeoutMs} ms`)), runTimeoutMs)
    })
    try {
      await Promise.race([peer(ctx), timeout])
    } finally {
      clearTimeout(timer)
    }
    // Unconfirmed publishes (S0, S1) may still be on their way into the queue.
    left = variant.window === 0 ? await admin.settledCount(queue, counts.sent) : await admin.count(queue)
    if (scenario.sink) inSink = await admin.count(sink)
  } catch (err) {
    error = err instanceof Error ? err.message : String(err)
  } finally {
    marks.stop()
    await admin.remove(queue).catch(() => {})
    if (scenario.sink) await admin.remove(sink).catch(() => {})
  }
  const s = marks.sample()
  const sec = s.elapsedMs / 1000
  const handled = counts[scenario.headline]
  const ok = !error && scenario.verify({ counts, prefilled, left, inSink }, variant)
  return {
    scenario: scenario.id,
    variant: variant.label,
    peer: peerName,
    round,
    elapsedMs: s.elapsedMs,
    ...counts,
    rate: handled / sec,
    sentRate: counts.sent / sec,
    confirmedRate: counts.confirmed / sec,
    receivedRate: counts.received / sec,
    latencyUs: s.latencyUs,
    consumerLatencyUs: s.consumerLatencyUs,
    clientCpuUsPerMsg: s.clientCpuUs / handled,
    brokerCpuUsPerMsg: s.brokerCpuUs / handled,
    brokerCpuPercent: (s.brokerCpuUs / s.elapsedMs / 1000) * 100,
    eventLoopDelayP99Ms: s.eventLoopDelayP99Ms,
    peakRssMB: s.peakRssMB,
    ...(ctx.rss.length > 0 ? { rssMB: ctx.rss } : {}),
    check: { left, inSink, prefilled },
    ...(error === undefined ? {} : { error }),
    ok,
  }
}
