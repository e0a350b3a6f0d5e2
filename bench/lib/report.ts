// Aggregates the rounds (median and min–max) and prints the table with lapinmq / peer ratios.

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
  /** The scenario's headline rate: confirmed/s (S2, S3), received/s (S5), acked/s (S7). */
  rate: number
  sentRate: number
  confirmedRate: number
  receivedRate: number
  latencyUs: { p50: number; p95: number; p99: number; count: number }
  clientCpuUsPerMsg: number
  brokerCpuUsPerMsg: number
  eventLoopDelayP99Ms: number
  check: Record<string, number>
  ok: boolean
  error?: string
}

export interface Summary {
  scenario: string
  variant: string
  peer: string
  rounds: number
  ok: number
  rate: { median: number; min: number; max: number }
  sentRate: number
  confirmedRate: number
  receivedRate: number
  latencyMs: { p50: number; p95: number; p99: number }
  clientCpuUsPerMsg: number
  brokerCpuUsPerMsg: number
  eventLoopDelayP99Ms: number
  /** lapinmq's median rate / this peer's, and lapinmq's CPU per message / this peer's. */
  ratio: { rate: number; cpu: number }
}

function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return Number.NaN
  const mid = v.length >> 1
  return v.length % 2 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2
}

export function summarize(results: RunResult[]): Summary[] {
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
      rate: { median: median(rates), min: Math.min(...rates), max: Math.max(...rates) },
      sentRate: median(good.map((r) => r.sentRate)),
      confirmedRate: median(good.map((r) => r.confirmedRate)),
      receivedRate: median(good.map((r) => r.receivedRate)),
      latencyMs: {
        p50: median(good.map((r) => r.latencyUs.p50)) / 1000,
        p95: median(good.map((r) => r.latencyUs.p95)) / 1000,
        p99: median(good.map((r) => r.latencyUs.p99)) / 1000,
      },
      clientCpuUsPerMsg: median(good.map((r) => r.clientCpuUsPerMsg)),
      brokerCpuUsPerMsg: median(good.map((r) => r.brokerCpuUsPerMsg)),
      eventLoopDelayP99Ms: median(good.map((r) => r.eventLoopDelayP99Ms)),
      ratio: { rate: Number.NaN, cpu: Number.NaN },
    })
  }
  for (const s of summaries) {
    const lapin = summaries.find(
      (x) => x.peer === 'lapinmq' && x.scenario === s.scenario && x.variant === s.variant,
    )
    if (!lapin) continue
    s.ratio = {
      rate: lapin.rate.median / s.rate.median,
      cpu: lapin.clientCpuUsPerMsg / s.clientCpuUsPerMsg,
    }
  }
  return summaries
}

const int = (x: number) => (Number.isFinite(x) && x !== 0 ? Math.round(x).toLocaleString('en-US') : '-')
const fix = (x: number, d: number) => (Number.isFinite(x) ? x.toFixed(d) : '-')

export function formatTable(summaries: Summary[], titles: Record<string, string>): string {
  const header = [
    'peer',
    'msg/s median',
    'min–max',
    'sent/s',
    'confirmed/s',
    'received/s',
    'confirm ms p50/p95/p99',
    'client µs/msg',
    'broker µs/msg',
    'ELD p99 ms',
    'counts ok',
    'lapinmq/peer msg/s',
    'lapinmq/peer CPU',
  ]
  const blocks: string[] = []
  let current = ''
  let rows: string[][] = []
  const flush = () => {
    if (rows.length === 0) return
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
    const line = (cells: string[]) =>
      cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')
    blocks.push([current, line(header), ...rows.map(line)].join('\n'))
    rows = []
  }
  for (const s of summaries) {
    const title = `${s.scenario} ${titles[s.scenario] ?? ''} (${s.variant})`
    if (title !== current) {
      flush()
      current = title
    }
    rows.push([
      s.peer,
      int(s.rate.median),
      `${int(s.rate.min)}–${int(s.rate.max)}`,
      int(s.sentRate),
      int(s.confirmedRate),
      int(s.receivedRate),
      `${fix(s.latencyMs.p50, 2)}/${fix(s.latencyMs.p95, 2)}/${fix(s.latencyMs.p99, 2)}`,
      fix(s.clientCpuUsPerMsg, 1),
      fix(s.brokerCpuUsPerMsg, 1),
      fix(s.eventLoopDelayP99Ms, 1),
      `${s.ok}/${s.rounds}`,
      s.peer === 'lapinmq' ? '' : `${fix(s.ratio.rate, 2)}×`,
      s.peer === 'lapinmq' ? '' : `${fix(s.ratio.cpu, 2)}×`,
    ])
  }
  flush()
  return blocks.join('\n\n')
}
