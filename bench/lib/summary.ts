// Aggregates the rounds of each variant and peer: medians, min–max, PerfTest's latency
// percentiles, counts, and lapinmq's ratios to each peer.
import { ceilingPeer } from './common.ts'
import type { Percentiles } from './measure.ts'

export interface RunResult {
  scenario: string
  variant: string
  peer: string
  round: number
  elapsedMs: number
  sent: number
  confirmed: number
  received: number
  nacked: number
  returned: number
  redelivered: number
  connectionsLost: number
  failed: number
  retried: number
  deadLettered: number
  callErrors: number
  mismatched: number
  /** S14: spans the SDK exported (runs saved before S14 have none). */
  spans?: number
  /** The scenario's headline rate: sent/s (S0, S1), confirmed/s (S2, S3, S8, S9), received/s (S5, S6, S11), acked/s (S7), replies matched/s (S12). */
  rate: number
  sentRate: number
  confirmedRate: number
  receivedRate: number
  latencyUs: Percentiles
  consumerLatencyUs: Percentiles
  clientCpuUsPerMsg: number
  brokerCpuUsPerMsg: number
  brokerCpuPercent: number
  eventLoopDelayP99Ms: number
  peakRssMB: number
  /** S9: RSS each second, MB. */
  rssMB?: number[]
  check: { left: number; inSink: number; prefilled: number; ladderLeft?: number; served?: number }
  ok: boolean
  error?: string
}

export type Lat = { min: number; p50: number; p75: number; p95: number; p99: number }

export interface Summary {
  scenario: string
  variant: string
  peer: string
  rounds: number
  ok: number
  errors: string[]
  rate: { median: number; min: number; max: number }
  sentRate: number
  confirmedRate: number
  receivedRate: number
  /** ms */
  confirmLatency: Lat
  /** ms */
  consumerLatency: Lat
  clientCpuUsPerMsg: number
  brokerCpuUsPerMsg: number
  brokerCpuPercent: number
  eventLoopDelayP99Ms: number
  peakRssMB: number
  /** Sums over the rounds. */
  counts: {
    sent: number
    confirmed: number
    received: number
    nacked: number
    returned: number
    redelivered: number
    connectionsLost: number
    failed: number
    retried: number
    deadLettered: number
    callErrors: number
    mismatched: number
    /** S12: requests the RPC server answered. */
    served: number
    /** S14: spans the SDK exported. */
    spans: number
  }
  /** S11: most messages left in the retry ladder's queues after the peer stopped, over the rounds. */
  ladderLeftMax: number
  /** Most messages left in the queue (A in S7) after the peer stopped, over the rounds. */
  leftMax: number
  /** S9: RSS at the end minus RSS after warm-up (the first quarter), MB, median over rounds. */
  rssGrowthMB: number
  model: number | undefined
  /** Each round's rate, by round number. */
  roundRates: Record<number, number>
  /** lapinmq's median rate / this peer's, and lapinmq's CPU per message / this peer's. */
  ratio: { rate: number; cpu: number }
}

export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return Number.NaN
  const mid = v.length >> 1
  return v.length % 2 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2
}

function rssGrowth(samples: number[] | undefined): number {
  if (!samples || samples.length < 4) return Number.NaN
  const warm = median(samples.slice(Math.floor(samples.length / 4) - 1, Math.floor(samples.length / 4) + 2))
  return median(samples.slice(-3)) - warm
}

const sum = (runs: RunResult[], f: (r: RunResult) => number) => runs.reduce((a, r) => a + f(r), 0)
const lat = (runs: RunResult[], f: (r: RunResult) => Percentiles): Lat => {
  const m = (k: keyof Lat) => median(runs.map((r) => f(r)[k])) / 1000
  return { min: m('min'), p50: m('p50'), p75: m('p75'), p95: m('p95'), p99: m('p99') }
}

export function summarize(
  results: RunResult[],
  model: (scenario: string, variant: string) => number | undefined,
): Summary[] {
  const groups = new Map<string, RunResult[]>()
  for (const r of results) {
    const key = `${r.scenario}\u0000${r.variant}\u0000${r.peer}`
    groups.set(key, [...(groups.get(key) ?? []), r])
  }
  const summaries: Summary[] = []
  for (const runs of groups.values()) {
    const first = runs[0] as RunResult
    const good = runs.filter((r) => !r.error)
    const rates = good.map((r) => r.rate)
    summaries.push({
      scenario: first.scenario,
      variant: first.variant,
      peer: first.peer,
      rounds: runs.length,
      ok: runs.filter((r) => r.ok).length,
      errors: runs.flatMap((r) => (r.error ? [r.error] : [])),
      rate: { median: median(rates), min: Math.min(...rates), max: Math.max(...rates) },
      sentRate: median(good.map((r) => r.sentRate)),
      confirmedRate: median(good.map((r) => r.confirmedRate)),
      receivedRate: median(good.map((r) => r.receivedRate)),
      confirmLatency: lat(good, (r) => r.latencyUs),
      consumerLatency: lat(good, (r) => r.consumerLatencyUs),
      clientCpuUsPerMsg: median(good.map((r) => r.clientCpuUsPerMsg)),
      brokerCpuUsPerMsg: median(good.map((r) => r.brokerCpuUsPerMsg)),
      brokerCpuPercent: median(good.map((r) => r.brokerCpuPercent)),
      eventLoopDelayP99Ms: median(good.map((r) => r.eventLoopDelayP99Ms)),
      peakRssMB: Math.max(...good.map((r) => r.peakRssMB)),
      counts: {
        sent: sum(runs, (r) => r.sent),
        confirmed: sum(runs, (r) => r.confirmed),
        received: sum(runs, (r) => r.received),
        nacked: sum(runs, (r) => r.nacked),
        returned: sum(runs, (r) => r.returned),
        redelivered: sum(runs, (r) => r.redelivered),
        connectionsLost: sum(runs, (r) => r.connectionsLost),
        // Runs saved before S11 have none of these.
        failed: sum(runs, (r) => r.failed ?? 0),
        retried: sum(runs, (r) => r.retried ?? 0),
        deadLettered: sum(runs, (r) => r.deadLettered ?? 0),
        // Runs saved before S12 have none of these.
        callErrors: sum(runs, (r) => r.callErrors ?? 0),
        mismatched: sum(runs, (r) => r.mismatched ?? 0),
        served: sum(runs, (r) => r.check.served ?? 0),
        spans: sum(runs, (r) => r.spans ?? 0),
      },
      ladderLeftMax: Math.max(...runs.map((r) => r.check.ladderLeft ?? 0)),
      leftMax: Math.max(...runs.map((r) => r.check.left)),
      rssGrowthMB: median(good.map((r) => rssGrowth(r.rssMB))),
      model: model(first.scenario, first.variant),
      roundRates: Object.fromEntries(good.map((r) => [r.round, r.rate])),
      ratio: { rate: Number.NaN, cpu: Number.NaN },
    })
  }
  for (const s of summaries) {
    const lapin = find(summaries, s.scenario, s.variant, 'lapinmq')
    if (!lapin) continue
    s.ratio = { rate: lapin.rate.median / s.rate.median, cpu: lapin.clientCpuUsPerMsg / s.clientCpuUsPerMsg }
  }
  return summaries
}

export function find(
  summaries: Summary[],
  scenario: string,
  variant: string,
  peer: string,
): Summary | undefined {
  return summaries.find((x) => x.scenario === scenario && x.variant === variant && x.peer === peer)
}

/**
 * The median over rounds of `a`'s rate ÷ `b`'s in the same round: steadier than the ratio of their
 * medians when rates drift from round to round.
 */
export function pairedRatio(a: Summary | undefined, b: Summary | undefined): number {
  if (!a || !b) return Number.NaN
  const ratios: number[] = []
  for (const [round, rate] of Object.entries(a.roundRates ?? {})) {
    const base = b.roundRates?.[Number(round)]
    if (base !== undefined && base > 0) ratios.push(rate / base)
  }
  return median(ratios)
}

/** The fastest peer of a variant, the raw client and lapinmq itself aside. */
export function fastest(summaries: Summary[], scenario: string, variant: string): Summary | undefined {
  return summaries
    .filter(
      (x) =>
        x.scenario === scenario && x.variant === variant && x.peer !== 'lapinmq' && x.peer !== ceilingPeer,
    )
    .sort((a, b) => b.rate.median - a.rate.median)[0]
}

export const int = (x: number | undefined) =>
  x !== undefined && Number.isFinite(x) && x !== 0 ? Math.round(x).toLocaleString('en-US') : '-'
export const fix = (x: number | undefined, d: number) =>
  x !== undefined && Number.isFinite(x) ? x.toFixed(d) : '-'
export const times = (x: number | undefined) =>
  x !== undefined && Number.isFinite(x) ? `${x.toFixed(2)}×` : '-'
