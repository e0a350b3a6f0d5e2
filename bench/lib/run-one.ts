// One measured run: fresh queue(s), prefill, the peer between its marks, the broker's counts
// checked after the peer closed, queues deleted.
import { randomBytes } from 'node:crypto'
import type { Admin } from './admin.ts'
import { flags, newCounts, type Scenario, type Variant } from './common.ts'
import type { Sample } from './measure.ts'
import type { RunReply, RunRequest } from './peer-child.ts'
import type { PeerProcesses } from './peer-process.ts'
import type { RpcServers } from './rpc-server.ts'
import type { RunResult } from './summary.ts'

const runTimeoutMs = 180_000

const none = { min: Number.NaN, p50: Number.NaN, p75: Number.NaN, p95: Number.NaN, p99: Number.NaN, count: 0 }
/** A run whose process failed before it measured anything. */
const emptySample: Sample = {
  elapsedMs: Number.NaN,
  clientCpuUs: Number.NaN,
  brokerCpuUs: Number.NaN,
  latencyUs: none,
  consumerLatencyUs: none,
  eventLoopDelayP99Ms: Number.NaN,
  peakRssMB: Number.NaN,
}

export interface RunEnv {
  admin: Admin
  /** The peers' own processes, where their runs happen. */
  peers: PeerProcesses
  brokerPid: number | undefined
  /** Where peers connect (the delaying proxy's URL in S8). */
  url: string
  /** S12's RPC servers, each kind in its own process. */
  servers: RpcServers
}

export async function runOne(
  env: RunEnv,
  scenario: Scenario,
  peerName: string,
  variant: Variant,
  round: number,
): Promise<RunResult> {
  const { admin } = env
  const tag = `${scenario.id}-${peerName.replace(/\W/g, '')}-${randomBytes(4).toString('hex')}`
  const queue = `bench-${tag}-a`
  const sink = `bench-${tag}-b`
  const prefilled = scenario.prefill(variant)
  const request: RunRequest = {
    scenario: scenario.id,
    peer: peerName,
    brokerPid: env.brokerPid,
    ctx: {
      ...variant,
      queue,
      sink,
      url: env.url,
      size: variant.size ?? flags.size,
      persistent: variant.persistent ?? flags.persistent,
      count: prefilled,
    },
  }
  let reply: RunReply | undefined
  let left = Number.NaN
  let inSink = Number.NaN
  let ladderLeft = 0
  let served = 0
  let server: { stop(): Promise<number> } | undefined
  const ladder = scenario.ladderQueues?.(queue, variant, peerName) ?? []
  let error: string | undefined
  try {
    await admin.declare(queue, variant.queueArgs)
    if (scenario.sink) await admin.declare(sink)
    if (prefilled > 0) await admin.prefill(queue, prefilled, variant.messageIds)
    const kind = scenario.server?.(variant, peerName)
    if (kind) {
      server = await env.servers.start(kind, {
        url: env.url,
        queue,
        prefetch: variant.prefetch,
        concurrency: variant.window,
      })
    }
    reply = await env.peers.run(request, runTimeoutMs, scenario.peerNodeArgs?.[peerName])
    if (server) {
      served = await server.stop()
      server = undefined
    }
    if (reply.error !== undefined) throw new Error(reply.error)
    // Unconfirmed publishes (S0, S1) may still be on their way into the queue.
    left =
      variant.window === 0 ? await admin.settledCount(queue, reply.counts.sent) : await admin.count(queue)
    if (scenario.sink) inSink = await admin.count(sink)
  } catch (err) {
    error = err instanceof Error ? err.message : String(err)
  } finally {
    await server?.stop().catch(() => {})
    await admin.remove(queue).catch(() => {})
    if (scenario.sink) await admin.remove(sink).catch(() => {})
    // After the peer closed: what its retry ladder still holds (0 once every retry came back).
    for (const name of ladder) ladderLeft += await admin.drop(name)
  }
  const counts = reply?.counts ?? newCounts()
  const s = reply?.sample ?? emptySample
  const sec = s.elapsedMs / 1000
  const handled = counts[scenario.headline]
  const ok = !error && scenario.verify({ counts, prefilled, left, inSink, ladderLeft, served }, variant)
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
    ...(reply && reply.rss.length > 0 ? { rssMB: reply.rss } : {}),
    check: { left, inSink, prefilled, ladderLeft, ...(scenario.server ? { served } : {}) },
    ...(error === undefined ? {} : { error }),
    ok,
  }
}
