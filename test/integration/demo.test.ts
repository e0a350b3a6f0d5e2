// `npm start` and its prestart hook, run as the user runs them: the demo delivers every message
// exactly once, says so, cleans up its queues and never prints a password; ensure-broker passes when
// the broker answers and fails with a helpful message, without starting anything, when it cannot help.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { after, describe, test } from 'node:test'
import { brokerUrl, closeAdmin, deleteQueue, queueCount } from '../helpers/broker.ts'

const repo = new URL('../../', import.meta.url)

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `node --import tsx <args>` in the repository root and collects its output. */
async function runTs(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: repo,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, stdout, stderr }
}

/** The numbers of the demo's summary block (`  lost       0`, ...). */
function summaryOf(stdout: string): Record<string, number> {
  const block = stdout.slice(stdout.indexOf('summary:'))
  const numbers: Record<string, number> = {}
  for (const [, name, value] of block.matchAll(/^ {2}(\w+) +([\d.]+)/gm)) {
    if (name !== undefined && value !== undefined) numbers[name] = Number(value)
  }
  return numbers
}

function queuesOf(stdout: string): string[] {
  const match = /^queues: (\S+) -> (\S+)$/m.exec(stdout)
  assert.ok(match?.[1] && match[2], `the demo names its queues:\n${stdout}`)
  return [match[1], match[2]]
}

const demoQueues: string[] = []

/** Runs the demo and checks what every run must show; returns its output. */
async function runDemo(args: string[], count: number): Promise<Run> {
  const run = await runTs(['src/cli/demo.ts', ...args])
  const queues = queuesOf(run.stdout)
  demoQueues.push(...queues)
  assert.equal(run.code, 0, `demo failed:\n${run.stdout}\n${run.stderr}`)
  const summary = summaryOf(run.stdout)
  assert.equal(summary.published, count)
  assert.equal(summary.confirmed, count)
  assert.equal(summary.acked, count)
  assert.equal(summary.received, count)
  assert.equal(summary.lost, 0)
  assert.equal(summary.duplicated, 0)
  assert.match(run.stdout, /^OK: every message arrived exactly once$/m)
  const progress = run.stdout.split('\n').filter((l) => l.startsWith('progress: '))
  assert.ok(progress.length >= 1, 'at least one progress line')
  assert.match(progress.at(-1) ?? '', new RegExp(`received ${count}, \\d+ msg/s$`))
  for (const queue of queues) {
    await assert.rejects(queueCount(queue), /NOT.FOUND/, `queue ${queue} was deleted`)
  }
  return run
}

describe('demo (npm start)', () => {
  after(async () => {
    for (const queue of demoQueues) await deleteQueue(queue)
    await closeAdmin()
  })

  test('forwards 2000 messages through an async pipeline: none lost or duplicated', async () => {
    await runDemo(['--count', '2000'], 2000)
  })

  test('sync publishers with an explicit --url: all delivered, and the password is never printed', async () => {
    const url = new URL(brokerUrl)
    assert.ok(url.password, 'the broker URL of the tests has a password')
    const run = await runDemo(['--kind', 'sync', '--count', '300', '--url', brokerUrl], 300)
    const output = run.stdout + run.stderr
    assert.ok(!output.includes(`${url.username}:${url.password}@`), 'no user:password in the output')
    assert.ok(!output.includes('guest:guest'))
    assert.match(run.stdout, /kind sync/)
    assert.match(run.stdout, /:\*\*\*@/, 'the broker is shown with its password redacted')
  })

  test('bad arguments: exit 2 with the usage', async () => {
    const run = await runTs(['src/cli/demo.ts', '--kind', 'fast'])
    assert.equal(run.code, 2)
    assert.match(run.stderr, /--kind must be 'sync' or 'async'/)
    assert.match(run.stderr, /Usage:/)
  })
})

describe('ensure-broker (prestart/pretest)', () => {
  const ensure = (url: string) => runTs(['scripts/ensure-broker.ts'], { RABBITMQ_URL: url })

  test('exits 0 at once, printing nothing, when the broker answers', async () => {
    const started = performance.now()
    const run = await ensure(brokerUrl)
    assert.equal(run.code, 0, run.stderr)
    assert.equal(run.stdout + run.stderr, '')
    assert.ok(performance.now() - started < 10_000)
  })

  test('a remote broker that does not answer: non-zero, says what to do, hides the password', async () => {
    // 192.0.2.0/24 is TEST-NET-1: never routed.
    const run = await ensure('amqp://lapin:s3cret-pw@192.0.2.1:5672/')
    assert.notEqual(run.code, 0)
    assert.match(run.stderr, /no RabbitMQ answers at amqp:\/\/lapin:\*\*\*@192\.0\.2\.1:5672/)
    assert.match(run.stderr, /RABBITMQ_URL=/)
    assert.ok(!(run.stdout + run.stderr).includes('s3cret-pw'))
  })

  test('a closed local port other than 5672: fails without starting a broker', async () => {
    const server = createServer()
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as { port: number }
    server.close()
    await once(server, 'close')
    const run = await ensure(`amqp://guest:s3cret-pw@127.0.0.1:${port}/`)
    assert.notEqual(run.code, 0)
    assert.match(run.stderr, /nothing listens there/)
    assert.match(run.stderr, /starts a local broker only when nothing listens on port 5672/)
    assert.doesNotMatch(run.stderr, /ensure-broker: running /, 'no command was run')
    assert.ok(!run.stderr.includes('s3cret-pw'))
  })

  test('a local port that is not AMQP: says so and fails', async () => {
    const server = createServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as { port: number }
    try {
      const run = await ensure(`amqp://guest:guest@127.0.0.1:${port}/`)
      assert.notEqual(run.code, 0)
      assert.match(run.stderr, /does not speak AMQP 0-9-1/)
    } finally {
      server.close()
    }
  })
})

// The install-and-start path, without touching the shared broker: in a private network and mount
// namespace, with the real rabbitmq-server hidden and fakes for apt-get and rabbitmq-server.
const sandbox = new URL('../fixtures/ensure-broker-sandbox.sh', import.meta.url).pathname
const canSandbox =
  process.getuid?.() === 0 &&
  existsSync('/usr/bin/apt-get') &&
  spawnSync('unshare', ['--mount', '--net', 'true']).status === 0 &&
  spawnSync('setpriv', ['--version']).status === 0

describe('ensure-broker install path (sandboxed)', {
  skip: canSandbox ? false : 'needs root, unshare, setpriv and apt-get',
}, () => {
  const inSandbox = (scenario: string): string => {
    const r = spawnSync('unshare', ['--mount', '--net', sandbox, scenario], {
      encoding: 'utf8',
      env: { ...process.env, NODE_BIN: process.execPath },
      timeout: 60_000,
    })
    assert.equal(r.status, 0, `sandbox failed:\n${r.stdout}\n${r.stderr}`)
    return r.stdout
  }

  test('installed but stopped: starts it with rabbitmq-server -detached and waits for AMQP', () => {
    const out = inSandbox('installed')
    assert.match(out, /^exit 0$/m)
    assert.match(out, /^rabbitmq-server -detached$/m)
    assert.doesNotMatch(out, /^apt-get/m)
  })

  test('missing, as root: apt-get update, install noninteractive, then starts it', () => {
    const out = inSandbox('missing')
    assert.match(out, /^exit 0$/m)
    assert.match(
      out,
      /^apt-get update DEBIAN_FRONTEND=noninteractive\napt-get install -y rabbitmq-server DEBIAN_FRONTEND=noninteractive\nrabbitmq-server -detached$/m,
    )
  })

  test('started by the package install: "already running" is fine', () => {
    const out = inSandbox('started-by-install')
    assert.match(out, /already running/)
    assert.match(out, /^exit 0$/m)
  })

  test('not root: fails with the exact commands, installs and starts nothing', () => {
    const missing = inSandbox('nonroot-missing')
    assert.match(missing, /^exit 1$/m)
    assert.match(missing, /sudo apt-get install -y rabbitmq-server && sudo rabbitmq-server -detached/)
    const installed = inSandbox('nonroot-installed')
    assert.match(installed, /^exit 1$/m)
    assert.match(installed, /^ {2}sudo rabbitmq-server -detached$/m)
    for (const out of [missing, installed]) assert.doesNotMatch(out, /^(apt-get|rabbitmq-server) /m)
  })
})
