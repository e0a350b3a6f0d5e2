// One measured run: fresh queue(s), prefill, the peer between its marks, the broker's counts
// checked after the peer closed, queues deleted.
import { randomBytes } from 'node:crypto'
import type { Admin } from './admin.ts'
import { newCounts, type PeerRun, type RunContext, type Scenario } from './common.ts'
import { createMarks } from './measure.ts'
import type { RunResult } from './report.ts'

export interface Variant {
  label: string
  durationMs: number
  count: number
  window: number
  prefetch: number
}

const runTimeoutMs = 120_000

export async function runOne(
  admin: Admin,
  brokerPid: number | undefined,
  scenario: Scenario,
  peerName: string,
  peer: PeerRun,
  variant: Variant,
  round: number,
): Promise<RunResult> {
  const tag = `${scenario.id}-${peerName.replace(/\W/g, '')}-${randomBytes(4).toString('hex')}`
  const queue = `bench-${tag}-a`
  const sink = `bench-${tag}-b`
  const marks = createMarks(brokerPid)
  const counts = newCounts()
  const prefilled = scenario.prefill({ count: variant.count })
  const ctx: RunContext = { ...variant, queue, sink, count: prefilled, marks, counts }
  const check: Record<string, number> = {}
  let error: string | undefined
  try {
    await admin.declare(queue)
    if (scenario.id === 'S7') await admin.declare(sink)
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
    check.left = await admin.count(queue)
    if (scenario.id === 'S7') check.inSink = await admin.count(sink)
  } catch (err) {
    error = err instanceof Error ? err.message : String(err)
  } finally {
    await admin.remove(queue).catch(() => {})
    if (scenario.id === 'S7') await admin.remove(sink).catch(() => {})
  }
  const s = marks.sample()
  const sec = s.elapsedMs / 1000
  const handled = scenario.id === 'S5' ? counts.received : counts.confirmed
  let ok = !error && counts.nacked === 0
  if (scenario.id === 'S2' || scenario.id === 'S3')
    ok &&= counts.sent === counts.confirmed && check.left === counts.confirmed
  if (scenario.id === 'S5') ok &&= counts.received === prefilled && check.left === 0
  if (scenario.id === 'S7')
    ok &&= counts.confirmed === prefilled && check.left === 0 && check.inSink === prefilled
  return {
    scenario: scenario.id,
    variant: variant.label,
    peer: peerName,
    round,
    elapsedMs: s.elapsedMs,
    sent: counts.sent,
    confirmed: counts.confirmed,
    received: counts.received,
    nacked: counts.nacked,
    rate: handled / sec,
    sentRate: counts.sent / sec,
    confirmedRate: counts.confirmed / sec,
    receivedRate: counts.received / sec,
    latencyUs: s.latencyUs,
    clientCpuUsPerMsg: s.clientCpuUs / handled,
    brokerCpuUsPerMsg: s.brokerCpuUs / handled,
    eventLoopDelayP99Ms: s.eventLoopDelayP99Ms,
    check,
    ...(error === undefined ? {} : { error }),
    ok,
  }
}
