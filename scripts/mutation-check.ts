// Mutation check of the headline guarantees: copies the repository to a temporary directory (its
// node_modules linked, not copied), breaks src/ in one way at a time, and runs the tests that must
// catch that break. Each mutation must make at least one test fail; one that no test notices fails
// the script. A replacement whose pattern no longer matches the source exactly once fails it too:
// update the pattern below with the code it targets.
//
//   npm run test:mutations              # every mutation
//   npm run test:mutations -- b d       # some of them
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'

interface Run {
  /** Test files, relative to the repository. */
  files: string[]
  /** Only the tests whose name matches (node --test-name-pattern). */
  pattern?: string
  /** Extra environment, e.g. LAPINMQ_FAST_PATH=0. */
  env?: Record<string, string>
}

interface Mutation {
  id: string
  what: string
  file: string
  find: string
  replace: string
  runs: Run[]
}

const mutations: Mutation[] = [
  {
    id: 'a',
    what: 'the last ack of each batch is dropped',
    file: 'src/consumer/ack-batcher.ts',
    find: `    const waiting = this.#waiting
    if (waiting.length === 0) return
    this.#waiting = []`,
    replace: `    const waiting = this.#waiting.slice(0, -1)
    this.#waiting = []
    if (waiting.length === 0) return`,
    runs: [
      {
        files: [
          'test/integration/consumer-statuses.test.ts',
          'test/integration/consumer-stop.test.ts',
          'test/integration/consumer-concurrency.test.ts',
        ],
      },
    ],
  },
  {
    id: 'b',
    what: 'a returned (unroutable) send is resolved as confirmed',
    file: 'src/publisher/publisher.ts',
    find: 'const error = nack ? new PublishNackedError(pending.exchange, pending.routingKey) : pending.returned',
    replace: 'const error = nack ? new PublishNackedError(pending.exchange, pending.routingKey) : undefined',
    runs: [
      {
        files: [
          'test/integration/publisher-unroutable.test.ts',
          'test/integration/publisher-returns-matched.test.ts',
          'test/integration/consumer-temporary-queue.test.ts',
          'test/integration/publisher-callback-throws.test.ts',
        ],
      },
    ],
  },
  {
    id: 'c',
    what: 'sends in doubt after a channel or connection loss are not republished',
    file: 'src/publisher/publisher.ts',
    find: 'if (this.#republish && active) again.push(pending)',
    replace: 'if (false) again.push(pending)',
    runs: [
      { files: ['test/integration/fault-proxy.test.ts'], pattern: '^\\(c\\) republish' },
      {
        files: [
          'test/integration/bodies-never-logged.test.ts',
          'test/integration/fault-graceful-restart.test.ts',
        ],
      },
    ],
  },
  {
    id: 'd',
    what: 'every ack is sent as a reject without requeue (amqplib path and raw fast-path frames alike)',
    file: 'src/amqp/channel-session.ts',
    find: `  ack(deliveryTag: number, multiple: boolean): boolean {
    if (!this.open) return false`,
    replace: `  ack(deliveryTag: number, multiple: boolean): boolean {
    return this.nack(deliveryTag, multiple, false)
    if (!this.open) return false`,
    runs: [
      {
        files: [
          'test/integration/consumer-statuses.test.ts',
          'test/integration/consumer-stop.test.ts',
          'test/integration/consumer-concurrency.test.ts',
        ],
      },
      { files: ['test/integration/consumer-statuses.test.ts'], env: { LAPINMQ_FAST_PATH: '0' } },
      { files: ['test/integration/fault-graceful-restart.test.ts'] },
    ],
  },
  {
    id: 'e',
    what: "a failed message is acked before the broker confirmed its copy in the retry ladder's next queue",
    file: 'src/consumer/failures.ts',
    find: `    message.settlingSoon()
    ladder.move(message, final, reason).then(`,
    replace: `    message.sendSettle('ack')
    ladder.move(message, final, reason).then(`,
    runs: [{ files: ['test/integration/fault-retry-ladder.test.ts'], pattern: 'refuses' }],
  },
  {
    id: 'f',
    what: 'the retry ladder trusts an attempt counter a producer wrote',
    file: 'src/retry/headers.ts',
    find: '  if (!cameFromDelayQueue(headers, retry)) return 0\n',
    replace: '',
    runs: [{ files: ['test/integration/consumer-retry.test.ts'], pattern: 'forged' }],
  },
]

const repo = join(import.meta.dirname, '..')
/** Per test; a fault test takes under a minute unbroken. */
const testTimeoutMs = 120_000
/** Per test file, hooks and a process that does not exit included. */
const fileTimeoutMs = 300_000
const wanted = process.argv.slice(2)
const selected = wanted.length > 0 ? mutations.filter((m) => wanted.includes(m.id)) : mutations
if (selected.length === 0) {
  process.stderr.write(
    `no mutation named ${wanted.join(', ')}; known: ${mutations.map((m) => m.id).join(', ')}\n`,
  )
  process.exit(2)
}

// The copy: every file but .git, build output and any node_modules; the root node_modules is linked.
const work = mkdtempSync(join(tmpdir(), 'lapinmq-mutation-'))
cpSync(repo, work, {
  recursive: true,
  filter: (source) => {
    const parts = relative(repo, source).split('/')
    return !parts.includes('node_modules') && parts[0] !== '.git' && parts[0] !== 'dist'
  },
})
symlinkSync(join(repo, 'node_modules'), join(work, 'node_modules'))

/** The failing tests in node:test's TAP output: leaves only (a suite fails with its tests), no todo. */
function failures(tap: string): string[] {
  const failed: string[] = []
  let previousIndent = -1
  for (const line of tap.split('\n')) {
    const m = /^(\s*)not ok \d+ - (.*)$/.exec(line)
    if (!m) continue
    const indent = m[1]?.length ?? 0
    // Subtests are reported before their suite: a suite comes right after a deeper failure.
    const suite = previousIndent > indent
    previousIndent = indent
    if (suite || /# TODO/.test(m[2] ?? '')) continue
    // A file that fails outside its tests (a hook, its exit code) is reported under its path.
    failed.push(m[2]?.startsWith('/') ? '(the file, outside its tests)' : (m[2] ?? ''))
  }
  return failed
}

const results: { mutation: Mutation; caughtBy: string[]; error?: string }[] = []
try {
  for (const mutation of selected) {
    const target = join(work, mutation.file)
    const pristine = readFileSync(join(repo, mutation.file), 'utf8')
    const count = pristine.split(mutation.find).length - 1
    if (count !== 1) {
      results.push({
        mutation,
        caughtBy: [],
        error: `its pattern matches ${count} times in ${mutation.file} (must be once): update it in scripts/mutation-check.ts`,
      })
      continue
    }
    writeFileSync(target, pristine.replace(mutation.find, mutation.replace))
    process.stderr.write(`\n=== mutation ${mutation.id}: ${mutation.what} (${mutation.file})\n`)
    const caughtBy: string[] = []
    try {
      for (const run of mutation.runs) {
        for (const file of run.files) {
          const label = `${file.replace(/^test\/integration\//, '')}${run.pattern ? ` (${run.pattern})` : ''}${run.env ? ` ${JSON.stringify(run.env)}` : ''}`
          process.stderr.write(`--- ${label}\n`)
          const child = spawnSync(
            process.execPath,
            [
              '--import',
              'tsx',
              '--import',
              './test/helpers/setup.ts',
              '--test',
              '--test-concurrency=1',
              // A mutation can make a test wait for what never comes: cut it short.
              `--test-timeout=${testTimeoutMs}`,
              ...(run.pattern ? [`--test-name-pattern=${run.pattern}`] : []),
              file,
            ],
            {
              cwd: work,
              env: { ...process.env, ...run.env },
              encoding: 'utf8',
              maxBuffer: 256 * 1024 * 1024,
              timeout: fileTimeoutMs,
              killSignal: 'SIGKILL',
            },
          )
          const failed = failures(child.stdout ?? '')
          for (const name of failed) process.stderr.write(`    failed: ${name}\n`)
          if (child.signal === 'SIGKILL') {
            process.stderr.write(`    killed after ${fileTimeoutMs / 1000} s\n`)
            caughtBy.push(`${label}: still running after ${fileTimeoutMs / 1000} s (killed)`)
          } else if (child.status !== 0 && failed.length === 0) {
            process.stderr.write(
              `    the run failed (exit ${child.status}) with no test reported as failing\n`,
            )
            caughtBy.push(`${label}: exit ${child.status}`)
          }
          caughtBy.push(...failed.map((name) => `${label}: ${name}`))
        }
      }
    } finally {
      writeFileSync(target, pristine)
    }
    results.push({ mutation, caughtBy })
  }
} finally {
  if (existsSync(work)) rmSync(work, { recursive: true, force: true })
}

process.stdout.write('\nmutation check\n')
let ok = true
for (const { mutation, caughtBy, error } of results) {
  const verdict = error ? 'ERROR' : caughtBy.length > 0 ? 'caught' : 'SURVIVED'
  if (verdict !== 'caught') ok = false
  process.stdout.write(`${mutation.id}: ${mutation.what}: ${verdict}${error ? ` (${error})` : ''}\n`)
  for (const test of caughtBy) process.stdout.write(`    ${test}\n`)
}
process.exit(ok ? 0 : 1)
