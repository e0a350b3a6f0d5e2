// The console tables and the Markdown report (bench/results/latest.md, pasted into the README):
// per scenario PerfTest's columns, a summary of every peer's rate with lapinmq's ratio to it and
// the model's prediction, and the documented targets.

import { withoutRetry } from '../scenarios/s11-retry.ts'
import { noApi, telemetryPeers } from '../scenarios/s14-telemetry.ts'
import { ceilingPeer, poolPeers } from './common.ts'
import { find, fix, int, type Lat, pairedRatio, type Summary, times } from './summary.ts'
import { verdicts } from './targets.ts'

const lat3 = (l: Lat) => (Number.isFinite(l.p50) ? `${fix(l.p50, 2)}/${fix(l.p95, 2)}/${fix(l.p99, 2)}` : '-')
const lat5 = (l: Lat) =>
  Number.isFinite(l.p50) ? [l.min, l.p50, l.p75, l.p95, l.p99].map((x) => fix(x, 2)).join(' / ') : '-'

interface Column {
  head: string
  cell: (s: Summary, lapin: Summary | undefined) => string
}

const common: Column[] = [
  { head: 'msg/s median', cell: (s) => int(s.rate.median) },
  { head: 'min–max', cell: (s) => `${int(s.rate.min)}–${int(s.rate.max)}` },
  { head: 'model', cell: (s) => int(s.model) },
  { head: '÷ model', cell: (s) => (s.model ? times(s.rate.median / s.model) : '-') },
]
const ratios: Column[] = [
  { head: 'lapinmq ÷ peer', cell: (s) => (s.peer === 'lapinmq' ? '' : times(s.ratio.rate)) },
  { head: 'lapinmq ÷ peer CPU', cell: (s) => (s.peer === 'lapinmq' ? '' : times(s.ratio.cpu)) },
]

const consoleColumns: Column[] = [
  ...common,
  { head: 'confirm ms p50/p95/p99', cell: (s) => lat3(s.confirmLatency) },
  { head: 'consumer ms p50/p95/p99', cell: (s) => lat3(s.consumerLatency) },
  { head: 'client µs/msg', cell: (s) => fix(s.clientCpuUsPerMsg, 1) },
  { head: 'broker µs/msg', cell: (s) => fix(s.brokerCpuUsPerMsg, 1) },
  { head: 'ELD p99 ms', cell: (s) => fix(s.eventLoopDelayP99Ms, 1) },
  { head: 'peak RSS MB', cell: (s) => fix(s.peakRssMB, 0) },
  { head: 'ok', cell: (s) => `${s.ok}/${s.rounds}` },
  ...ratios,
]

const markdownColumns: Column[] = [
  ...common,
  { head: 'sent/s', cell: (s) => int(s.sentRate) },
  { head: 'confirmed/s', cell: (s) => int(s.confirmedRate) },
  { head: 'received/s', cell: (s) => int(s.receivedRate) },
  { head: 'confirm latency ms min/p50/p75/p95/p99', cell: (s) => lat5(s.confirmLatency) },
  { head: 'consumer latency ms min/p50/p75/p95/p99', cell: (s) => lat5(s.consumerLatency) },
  { head: 'client CPU µs/msg', cell: (s) => fix(s.clientCpuUsPerMsg, 1) },
  {
    head: 'broker CPU µs/msg (% of a core)',
    cell: (s) => `${fix(s.brokerCpuUsPerMsg, 1)} (${fix(s.brokerCpuPercent, 0)}%)`,
  },
  { head: 'event-loop delay p99 ms', cell: (s) => fix(s.eventLoopDelayP99Ms, 1) },
  { head: 'peak RSS MB', cell: (s) => fix(s.peakRssMB, 0) },
  {
    head: 'counts sent/confirmed/received/nacked/returned; queue depth after',
    cell: (s) => {
      const c = s.counts
      return `${c.sent}/${c.confirmed}/${c.received}/${c.nacked}/${c.returned}, ${fix(s.leftMax, 0)}`
    },
  },
  { head: 'counts ok', cell: (s) => `${s.ok}/${s.rounds}` },
  ...ratios,
]

/** Extra columns of some scenarios (`summaries`: the run's, for ratios to another peer). */
function extra(scenario: string, summaries: Summary[]): Column[] {
  if (scenario === 'S9') return [{ head: 'RSS growth MB', cell: (s) => fix(s.rssGrowthMB, 1) }]
  if (scenario === 'S10') {
    return [
      { head: 'redelivered', cell: (s) => String(s.counts.redelivered) },
      { head: 'connections lost', cell: (s) => String(s.counts.connectionsLost) },
    ]
  }
  if (scenario === 'S11') {
    // The "consumer latency" histogram holds failure → redelivery here.
    return [
      { head: 'failed / back from the ladder / x-death', cell: (s) => ladderCounts(s) },
      { head: 'failure → redelivery ms p50/p95/p99', cell: (s) => lat3(s.consumerLatency) },
      { head: 'left in the ladder', cell: (s) => fix(s.ladderLeftMax, 0) },
    ]
  }
  if (scenario === 'S12') {
    // The "confirm latency" histogram holds call → reply here.
    return [
      { head: 'calls / replies matched / errors / mismatched / answered', cell: (s) => rpcCounts(s) },
      { head: 'call → reply ms p50/p95/p99', cell: (s) => lat3(s.confirmLatency) },
    ]
  }
  if (scenario === 'S14') {
    // Each variant ÷ the same code without the OTel API, in the same rounds.
    const base = (s: Summary) => find(summaries, s.scenario, s.variant, noApi)
    return [
      { head: '÷ no OTel API', cell: (s) => times(s.rate.median / (base(s)?.rate.median ?? Number.NaN)) },
      { head: '÷ no OTel API round by round', cell: (s) => times(pairedRatio(s, base(s))) },
      {
        head: 'CPU ÷ no OTel API',
        cell: (s) => times(s.clientCpuUsPerMsg / (base(s)?.clientCpuUsPerMsg ?? Number.NaN)),
      },
      { head: 'spans exported / msg', cell: (s) => fix(s.counts.spans / s.counts.confirmed, 2) },
      // The pipeline's A after the peer stopped (S3's variant publishes only: its queue is its count).
      { head: 'left unacked', cell: (s) => (s.counts.received > 0 ? fix(s.leftMax, 0) : '-') },
    ]
  }
  if (scenario === 'S5' || scenario === 'S6' || scenario === 'S7') {
    return [{ head: 'left unacked', cell: (s) => fix(s.leftMax, 0) }]
  }
  return []
}

const rpcCounts = ({ counts: c }: Summary) =>
  `${c.sent} / ${c.received} / ${c.callErrors} / ${c.mismatched} / ${c.served}`
const ladderCounts = (s: Summary) => `${s.counts.failed} / ${s.counts.retried} / ${s.counts.deadLettered}`

function groupByScenario(summaries: Summary[]): Map<string, Summary[]> {
  const m = new Map<string, Summary[]>()
  for (const s of summaries) m.set(s.scenario, [...(m.get(s.scenario) ?? []), s])
  return m
}

export function formatTable(summaries: Summary[], titles: Record<string, string>): string {
  const blocks: string[] = []
  for (const [scenario, rows] of groupByScenario(summaries)) {
    const cols = [...consoleColumns, ...extra(scenario, summaries)]
    const header = ['variant', 'peer', ...cols.map((c) => c.head)]
    const cells = rows.map((s, i) => [
      i > 0 && rows[i - 1]?.variant === s.variant ? '' : s.variant,
      s.peer,
      ...cols.map((c) => c.cell(s, find(summaries, s.scenario, s.variant, 'lapinmq'))),
    ])
    const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)))
    const line = (cs: string[]) =>
      cs.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')
    blocks.push([`${scenario} ${titles[scenario] ?? ''}`, line(header), ...cells.map(line)].join('\n'))
  }
  return blocks.join('\n\n')
}

const peerOrder = [
  'lapinmq',
  withoutRetry,
  'amqplib',
  'amqp-connection-manager',
  'rabbitmq-client',
  '@cloudamqp/amqp-client',
  ceilingPeer,
  ...poolPeers,
  ...telemetryPeers,
]

/**
 * One row per scenario variant: each peer's median msg/s with lapinmq's ratio to it, the model's
 * prediction, and lapinmq's client CPU per message beside amqplib's.
 */
export function summaryRows(summaries: Summary[]): string[][] {
  // 'lapinmq, no retry' runs in S11 only: no empty column for it in a run without S11.
  const peers = peerOrder.filter((peer) => summaries.some((s) => s.peer === peer))
  const header = ['scenario', 'variant', 'model', ...peers, 'client µs/msg lapinmq / amqplib']
  const rows: string[][] = [header]
  const seen = new Set<string>()
  for (const s of summaries) {
    const key = `${s.scenario}\u0000${s.variant}`
    if (seen.has(key)) continue
    seen.add(key)
    const lapin = find(summaries, s.scenario, s.variant, 'lapinmq')
    const amqp = find(summaries, s.scenario, s.variant, 'amqplib')
    rows.push([
      s.scenario,
      s.variant,
      int(s.model),
      ...peers.map((peer) => {
        const x = find(summaries, s.scenario, s.variant, peer)
        if (!x) return ''
        const bad = x.ok < x.rounds ? ' !' : ''
        if (s.scenario === 'S10') {
          const c = x.counts
          return `${c.connectionsLost} lost, ${c.redelivered} redelivered, ${fix(x.leftMax, 0)} left${bad}`
        }
        return peer === 'lapinmq' || !lapin
          ? `${int(x.rate.median)}${bad}`
          : `${int(x.rate.median)} (${times(x.ratio.rate)})${bad}`
      }),
      lapin && amqp ? `${fix(lapin.clientCpuUsPerMsg, 1)} / ${fix(amqp.clientCpuUsPerMsg, 1)}` : '',
    ])
  }
  return rows
}

export function formatSummary(summaries: Summary[]): string {
  const rows = summaryRows(summaries)
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows
    .map((r) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  '))
    .join('\n')
}

export interface MarkdownMeta {
  mode: string
  rounds: number
  seconds: number
  date: string
  machine: string
  node: string
  rabbitmq: string
  versions: Record<string, string>
  flags: string
  calibration: string
  modelNotes: string[]
}

/** "5 rounds", or "3–5 rounds per variant" when the sweeps' points have fewer rounds than the targets'. */
function roundsText(summaries: Summary[], rounds: number): string {
  const counts = summaries.map((s) => s.rounds)
  const [lo, hi] = [Math.min(...counts, rounds), Math.max(...counts, rounds)]
  return lo === hi
    ? `${hi} rounds`
    : `${lo}–${hi} rounds per variant (${hi} for the targets' variants; see "counts ok")`
}

export function formatMarkdown(
  summaries: Summary[],
  titles: Record<string, string>,
  meta: MarkdownMeta,
): string {
  const out: string[] = []
  out.push(`### Benchmarks: latest ${meta.mode} run (${meta.date})`, '')
  out.push(
    `- Machine: ${meta.machine}; the broker and the client share it, so only ratios within one run mean anything.`,
    `- Node ${meta.node}, RabbitMQ ${meta.rabbitmq}; ${Object.entries(meta.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.`,
    `- ${meta.flags}; peers interleaved round by round, ${roundsText(summaries, meta.rounds)} (medians, min–max), fresh queue per run; took ${Math.round(meta.seconds)} s.`,
    `- Calibration (raw client, local): ${meta.calibration}.`,
    '',
  )
  const rows = summaryRows(summaries)
  out.push(
    '#### Summary: median msg/s (lapinmq ÷ peer); `!` = counts wrong in some round',
    '',
    `| ${(rows[0] ?? []).join(' | ')} |`,
    `|---|---|${(rows[0] ?? [])
      .slice(2)
      .map(() => '---:')
      .join('|')}|`,
    ...rows.slice(1).map((r) => `| ${r.join(' | ')} |`),
    '',
  )
  out.push('#### Targets', '', '| target | verdict | numbers |', '|---|---|---|')
  for (const v of verdicts(summaries)) {
    out.push(
      `| ${v.target} | ${v.met === undefined ? 'not measured' : v.met ? '**met**' : '**not met**'} | ${v.numbers} |`,
    )
  }
  out.push('')
  for (const [scenario, rows] of groupByScenario(summaries)) {
    const cols = [...markdownColumns, ...extra(scenario, summaries)]
    out.push(`<details><summary>${scenario} ${titles[scenario] ?? ''}: PerfTest-style details</summary>`, '')
    out.push(`| variant | peer | ${cols.map((c) => c.head).join(' | ')} |`)
    out.push(`|---|---|${cols.map(() => '---:').join('|')}|`)
    for (const s of rows) {
      const lapin = find(summaries, s.scenario, s.variant, 'lapinmq')
      const peer = s.peer === 'lapinmq' ? '**lapinmq**' : s.peer
      out.push(`| ${s.variant} | ${peer} | ${cols.map((c) => c.cell(s, lapin)).join(' | ')} |`)
    }
    out.push('', '</details>', '')
  }
  out.push('#### Models', '', ...meta.modelNotes.map((n) => `- ${n}`), '')
  return out.join('\n')
}
