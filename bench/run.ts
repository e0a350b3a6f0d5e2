// PerfTest-style benchmark of lapinmq against the other Node clients, peers interleaved round by
// round on fresh queues. `npm run bench` (quick, ~1 min) or `npm run bench -- --full` (~20 min).
// Flags: --full, --rounds N, --only S2,S7, --peers lapinmq,amqplib, --variants 'prefetch 100|W=1000'
// (variants whose label contains one of the parts); --from results/<file>.json
// prints and writes the report of an earlier run again (no broker needed).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { parseArgs } from 'node:util'
import { openAdmin } from './lib/admin.ts'
import { ceilingPeer, flags, url } from './lib/common.ts'
import { type DelayProxy, startDelayProxy } from './lib/delay-proxy.ts'
import { findBrokerPid } from './lib/measure.ts'
import { type Calibration, type Ceilings, calibrate, measureRtt, modelNotes, predict } from './lib/models.ts'
import { PeerProcesses } from './lib/peer-process.ts'
import { buildPlan } from './lib/plan.ts'
import { formatMarkdown, formatSummary, formatTable } from './lib/report.ts'
import { RpcServers } from './lib/rpc-server.ts'
import { type RunEnv, runOne } from './lib/run-one.ts'
import { median, type RunResult, summarize } from './lib/summary.ts'
import { formatVerdicts, verdicts } from './lib/targets.ts'

const { values: args } = parseArgs({
  options: {
    full: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    only: { type: 'string' },
    peers: { type: 'string' },
    variants: { type: 'string' },
    from: { type: 'string' },
  },
})

/** What a run measured, as written to (and read back from) its JSON file. */
interface Run {
  mode: 'full' | 'quick'
  rounds: number
  seconds: number
  date: string
  node: string
  rabbitmq: string
  machine: { cpus: number; cpu: string; memGB: number; loadavg: number[]; os?: string }
  versions: Record<string, string>
  flags: typeof flags
  calibration: Calibration
  results: RunResult[]
}

process.on('unhandledRejection', (err) => console.error('unhandled rejection:', err))

const run: Run = args.from ? JSON.parse(readFileSync(args.from, 'utf8')) : await measure()
const full = run.mode === 'full'
const plan = buildPlan(full, true, true)
const { results, calibration: cal } = run

const rawRate = (scenario: string, label: string) =>
  median(
    results
      .filter((r) => r.scenario === scenario && r.variant === label && r.peer === ceilingPeer && r.ok)
      .map((r) => r.rate),
  )
// S0's rows, else the raw client's rows of S1 (1 KB) and S3 (W=1000) when S0 did not run.
const s0OrRow = (label: string, scenario: string, row: string) =>
  [rawRate('S0', label), rawRate(scenario, row)].find((x) => Number.isFinite(x)) ?? Number.NaN
const ceilings: Ceilings = {}
const unconfirmed = s0OrRow('no confirms, transient', 'S1', '1 KB')
const confirmed = s0OrRow('W=1000, transient', 'S3', 'W=1000')
if (Number.isFinite(unconfirmed)) ceilings.unconfirmed = unconfirmed
if (Number.isFinite(confirmed)) ceilings.confirmed = confirmed
// "Round trip + broker time" of the models: the raw client's sync-confirm rate in S2's own
// interleaved rounds (no client overhead; the start-up calibration is a noisier stand-in).
const model: Calibration = { ...cal }
const rawSync = rawRate('S2', 'transient')
const rawSyncPersistent = rawRate('S2', 'persistent')
if (Number.isFinite(rawSync)) model.confirmMs = 1000 / rawSync
if (Number.isFinite(rawSyncPersistent)) model.confirmPersistentMs = 1000 / rawSyncPersistent

const variantsById = new Map(
  plan.flatMap(({ scenario, variants }) => variants.map((v) => [`${scenario.id} ${v.label}`, v])),
)
const summaries = summarize(results, (scenario, label) => {
  const variant = variantsById.get(`${scenario} ${label}`)
  return variant && predict(scenario, variant, model, ceilings)
})
const titles = Object.fromEntries(plan.map(({ scenario }) => [scenario.id, scenario.title]))
console.log(
  `\n${formatTable(summaries, titles)}\n\nSummary: median msg/s (lapinmq ÷ peer)\n${formatSummary(summaries)}`,
)
console.log(`\n${formatVerdicts(verdicts(summaries))}\n\ntook ${run.seconds.toFixed(1)} s`)

const dir = new URL('./results/', import.meta.url)
mkdirSync(dir, { recursive: true })
if (!args.from) {
  const file = new URL(`${run.date.replace(/[:.]/g, '-')}-${run.mode}.json`, dir)
  writeFileSync(file, JSON.stringify({ ...run, model, ceilings, summaries }, null, 2))
  console.log(`results: ${file.pathname}`)
}
const calText =
  `basic.qos round trip p50 ${cal.pingMs.toFixed(3)} ms, sync confirm p50 ${cal.confirmP50Ms.toFixed(3)} ms, ` +
  `mean ${cal.confirmMs.toFixed(3)} ms${cal.confirmPersistentMs ? ` (persistent ${cal.confirmPersistentMs.toFixed(3)} ms)` : ''}; ` +
  `models' round trip + broker time ${model.confirmMs.toFixed(3)} ms (1 / the raw client's S2 rate)` +
  `${model.confirmPersistentMs ? `, persistent ${model.confirmPersistentMs.toFixed(3)} ms` : ''}; ` +
  `S0 ceilings ${Math.round(unconfirmed).toLocaleString('en-US')} msg/s unconfirmed, ${Math.round(confirmed).toLocaleString('en-US')} msg/s window 1000`
const m = run.machine
const markdown = formatMarkdown(summaries, titles, {
  mode: run.mode,
  rounds: run.rounds,
  seconds: run.seconds,
  date: run.date,
  node: run.node,
  rabbitmq: run.rabbitmq,
  machine: `${m.cpus}× ${m.cpu}, ${Math.round(m.memGB)} GB RAM, ${m.os ?? os.type()}, load average ${m.loadavg.map((x) => x.toFixed(1)).join(' ')} at the start`,
  versions: run.versions,
  flags: `${flags.size}-byte ${flags.persistent ? 'persistent' : 'transient'} messages unless the variant says otherwise, mandatory, noDelay`,
  calibration: calText,
  modelNotes,
})
// Only a whole run is "the latest": a run cut down by --only, --peers or --variants is not the README's table.
const partial = !args.from && (args.only ?? args.peers ?? args.variants) !== undefined
const mdFile = new URL(partial ? 'latest-partial.md' : full ? 'latest.md' : 'latest-quick.md', dir)
writeFileSync(mdFile, markdown)
console.log(`markdown: ${mdFile.pathname}`)
process.exit(0)

/** Runs the plan against the broker. */
async function measure(): Promise<Run> {
  const full = args.full === true
  /** --rounds, when given, applies to every variant; else each variant's own count, or this default. */
  const rounds = Number(args.rounds ?? (full ? 5 : 3))
  const roundsOf = (variant: { rounds?: number | undefined }) =>
    args.rounds === undefined ? (variant.rounds ?? rounds) : rounds
  const only = args.only?.split(',')
  const peerFilter = args.peers?.split(',')
  const variantFilter = args.variants?.split('|')
  // The pooled variants run in full mode, or when asked for by name (`--variants pooled`).
  const pooled = full || variantFilter?.some((part) => part.includes('pool')) === true
  const plan = buildPlan(full, full || only?.includes('S10'), pooled)
    .filter(({ scenario }) => !only || only.includes(scenario.id))
    .map((step) => ({
      ...step,
      variants: step.variants.filter(
        (v) => !variantFilter || variantFilter.some((part) => v.label.includes(part)),
      ),
    }))
    .filter((step) => step.variants.length > 0)

  const started = Date.now()
  const brokerPid = findBrokerPid(Number(new URL(url).port || 5672))
  const admin = await openAdmin()
  const peerProcesses = new PeerProcesses()
  const servers = new RpcServers()
  const peerPackages = ['amqplib', 'amqp-connection-manager', 'rabbitmq-client', '@cloudamqp/amqp-client']
  const readVersion = (path: string) =>
    JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')).version
  const versions: Record<string, string> = {
    lapinmq: `${readVersion('../package.json')} (${gitHead()})`,
    ...Object.fromEntries(peerPackages.map((p) => [p, readVersion(`./node_modules/${p}/package.json`)])),
  }
  const machine = {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? '?',
    memGB: os.totalmem() / 2 ** 30,
    loadavg: os.loadavg(),
    os: `${os.type()} ${os.release()}`,
  }
  console.log(
    `lapinmq bench (${full ? 'full' : 'quick'}): ${rounds} rounds, RabbitMQ ${admin.brokerVersion}, Node ${process.version}, ` +
      `${machine.cpus}× ${machine.cpu}, broker pid ${brokerPid ?? 'not found'}, load ${machine.loadavg[0]?.toFixed(2)}`,
  )
  const cal = await calibrate(url, full)
  console.log(
    `calibration: basic.qos round trip p50 ${cal.pingMs.toFixed(3)} ms, sync confirm p50 ${cal.confirmP50Ms.toFixed(3)} ms, mean ${cal.confirmMs.toFixed(3)} ms`,
  )

  let proxy: DelayProxy | undefined
  const results: RunResult[] = []
  for (const { scenario, variants } of plan) {
    // Fresh peer processes for each scenario: one process that ran S1–S6 before S7 carried their
    // JIT feedback into it (S7 prefetch 100 CPU ratio 0.95× in a full run, 0.82–0.89× alone).
    await peerProcesses.close()
    const peers = Object.keys(scenario.peers).filter((name) => !peerFilter || peerFilter.includes(name))
    const warmed = new Set<string>()
    for (const variant of variants) {
      const env: RunEnv = { admin, peers: peerProcesses, brokerPid, url, servers }
      if (variant.rttMs !== undefined) {
        proxy ??= await startDelayProxy(url)
        await proxy.setRtt(variant.rttMs)
        env.url = proxy.url
        cal.linkRttMs[variant.label] = await measureRtt(proxy.url)
      }
      const these = peers.filter((name) =>
        variant.peers ? variant.peers.includes(name) : !scenario.variantOnlyPeers?.includes(name),
      )
      // The JIT needs seconds, not milliseconds, to settle (measured: a peer's CPU per message fell
      // 87 → 52 → 30 → 25 µs over four 0.5 s runs), and it must settle for every peer alike: a peer
      // whose code is also warmed by the harness (amqplib runs the prefill) would otherwise win.
      const warmUp = {
        ...variant,
        durationMs: variant.durationMs > 0 ? Math.max(variant.durationMs * 0.4, full ? 3000 : 1000) : 0,
        count: variant.count > 0 ? Math.max(Math.ceil(variant.count / 4), full ? 30_000 : 5_000) : 0,
      }
      for (const name of these) {
        const key = variant.ownWarmUp ? `${name}\u0000${variant.label}` : name
        if (variant.warmUp === false || warmed.has(key)) continue
        warmed.add(key)
        const r = await runOne(env, scenario, name, warmUp, 0)
        if (r.error) console.log(`  ${scenario.id} ${variant.label} warm-up ${name}: ERROR ${r.error}`)
      }
      for (let round = 1; round <= roundsOf(variant); round++) {
        // Each round starts one peer further (A B C, B C A, C A B, …): no peer always follows the
        // same one, whose queue the broker may still be deleting.
        const shift = (round - 1) % these.length
        for (const name of [...these.slice(shift), ...these.slice(0, shift)]) {
          const r = await runOne(env, scenario, name, variant, round)
          results.push(r)
          const counts = {
            ...r.check,
            sent: r.sent,
            confirmed: r.confirmed,
            received: r.received,
            nacked: r.nacked,
          }
          const note = r.error ? ` ERROR ${r.error}` : r.ok ? '' : ` COUNTS ${JSON.stringify(counts)}`
          console.log(
            `  ${scenario.id} ${variant.label} round ${round} ${name}: ${Math.round(r.rate)} msg/s${note}`,
          )
        }
      }
    }
  }
  await peerProcesses.close()
  await servers.close()
  await proxy?.close()
  await admin.close()
  return {
    mode: full ? 'full' : 'quick',
    rounds,
    seconds: (Date.now() - started) / 1000,
    date: new Date().toISOString(),
    node: process.version,
    rabbitmq: admin.brokerVersion,
    machine,
    versions,
    flags,
    calibration: cal,
    results,
  }
}

function gitHead(): string {
  try {
    const head = readFileSync(new URL('../.git/HEAD', import.meta.url), 'utf8').trim()
    if (!head.startsWith('ref: ')) return head.slice(0, 7)
    return readFileSync(new URL(`../.git/${head.slice(5)}`, import.meta.url), 'utf8')
      .trim()
      .slice(0, 7)
  } catch {
    return 'no git'
  }
}
