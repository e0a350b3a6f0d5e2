// PerfTest-style benchmark of lapinmq against the other Node clients, peers interleaved round by
// round on fresh queues. `npm run bench` (quick, ~1 min) or `npm run bench -- --full`.
// Flags: --full, --rounds N, --only S2,S7, --peers lapinmq,amqplib
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { parseArgs } from 'node:util'
import { openAdmin } from './lib/admin.ts'
import { flags, type Scenario, url } from './lib/common.ts'
import { findBrokerPid } from './lib/measure.ts'
import { formatTable, type RunResult, summarize } from './lib/report.ts'
import { runOne, type Variant } from './lib/run-one.ts'
import { s2 } from './scenarios/s2-sync.ts'
import { s3 } from './scenarios/s3-async.ts'
import { s5 } from './scenarios/s5-consume.ts'
import { s7 } from './scenarios/s7-pipeline.ts'

const { values: args } = parseArgs({
  options: {
    full: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    only: { type: 'string' },
    peers: { type: 'string' },
  },
})
const full = args.full === true
const rounds = Number(args.rounds ?? (full ? 5 : 3))
const only = args.only?.split(',')
const peerFilter = args.peers?.split(',')

const publishMs = full ? 5000 : 500
const plan: { scenario: Scenario; variants: Variant[] }[] = [
  {
    scenario: s2,
    variants: [{ label: 'transient', durationMs: publishMs, count: 0, window: 1, prefetch: 0 }],
  },
  {
    scenario: s3,
    variants: (full ? [1, 10, 100, 1000] : [1000]).map((w) => ({
      label: `W=${w}`,
      durationMs: publishMs,
      count: 0,
      window: w,
      prefetch: 0,
    })),
  },
  {
    scenario: s5,
    variants: [
      { label: 'prefetch 300', durationMs: 0, count: full ? 100_000 : 10_000, window: 0, prefetch: 300 },
    ],
  },
  {
    scenario: s7,
    variants: [
      { label: 'prefetch 100, async', durationMs: 0, count: full ? 50_000 : 5_000, window: 0, prefetch: 100 },
    ],
  },
]

process.on('unhandledRejection', (err) => console.error('unhandled rejection:', err))

const started = Date.now()
const brokerPid = findBrokerPid(Number(new URL(url).port || 5672))
const admin = await openAdmin()
const versions = Object.fromEntries(
  ['amqplib', 'amqp-connection-manager', 'rabbitmq-client', '@cloudamqp/amqp-client'].map((p) => [
    p,
    JSON.parse(readFileSync(new URL(`./node_modules/${p}/package.json`, import.meta.url), 'utf8')).version,
  ]),
)
console.log(
  `lapinmq bench (${full ? 'full' : 'quick'}): ${rounds} rounds, RabbitMQ ${admin.brokerVersion}, Node ${process.version}, ` +
    `${os.cpus().length}× ${os.cpus()[0]?.model ?? '?'}, broker pid ${brokerPid ?? 'not found'}, load ${os.loadavg()[0]?.toFixed(2)}`,
)

const results: RunResult[] = []
for (const { scenario, variants } of plan) {
  if (only && !only.includes(scenario.id)) continue
  const peers = Object.entries(scenario.peers).filter(([name]) => !peerFilter || peerFilter.includes(name))
  for (const variant of variants) {
    const warmUp = { ...variant, durationMs: variant.durationMs / 2.5, count: Math.ceil(variant.count / 5) }
    for (const [name, peer] of peers) await runOne(admin, brokerPid, scenario, name, peer, warmUp, 0)
    for (let round = 1; round <= rounds; round++) {
      for (const [name, peer] of peers) {
        const r = await runOne(admin, brokerPid, scenario, name, peer, variant, round)
        results.push(r)
        const note = r.error ? ` ERROR ${r.error}` : r.ok ? '' : ` COUNTS ${JSON.stringify(r.check)}`
        console.log(
          `  ${scenario.id} ${variant.label} round ${round} ${name}: ${Math.round(r.rate)} msg/s${note}`,
        )
      }
    }
  }
}
await admin.close()

const summaries = summarize(results)
const titles = Object.fromEntries(plan.map(({ scenario }) => [scenario.id, scenario.title]))
const seconds = (Date.now() - started) / 1000
console.log(`\n${formatTable(summaries, titles)}\n\ntook ${seconds.toFixed(1)} s`)

const dir = new URL('./results/', import.meta.url)
mkdirSync(dir, { recursive: true })
const file = new URL(`${new Date().toISOString().replace(/[:.]/g, '-')}-${full ? 'full' : 'quick'}.json`, dir)
const machine = {
  cpus: os.cpus().length,
  cpu: os.cpus()[0]?.model,
  memGB: os.totalmem() / 2 ** 30,
  loadavg: os.loadavg(),
}
const meta = {
  mode: full ? 'full' : 'quick',
  rounds,
  seconds,
  node: process.version,
  rabbitmq: admin.brokerVersion,
}
writeFileSync(file, JSON.stringify({ ...meta, machine, versions, flags, summaries, results }, null, 2))
console.log(`results: ${file.pathname}`)
process.exit(0)
