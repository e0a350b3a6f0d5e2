// `lapinmq consume`, run as a user runs it: --count prints exactly N and leaves the rest, --json
// shows properties and headers, --requeue leaves everything, --exec acks on exit 0 and retries a
// failing command until it succeeds, and SIGTERM stops it gracefully.
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import {
  closeAdmin,
  declareQueue,
  deleteQueue,
  drainQueue,
  publishRaw,
  queueCount,
  uniqueName,
} from '../helpers/broker.ts'
import { type CliChild, isPlain, killCli, runCli, spawnCli } from '../helpers/cli.ts'

const queues: string[] = []
const children: CliChild[] = []
let scratch: string | undefined

async function queueWith(prefix: string, bodies: string[]): Promise<string> {
  const queue = uniqueName(prefix)
  queues.push(queue)
  await declareQueue(queue)
  await publishRaw(queue, bodies)
  return queue
}

const numbered = (n: number, prefix = 'msg') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

describe('lapinmq consume', () => {
  after(async () => {
    for (const child of children) killCli(child)
    for (const queue of queues) await deleteQueue(queue)
    if (scratch) await rm(scratch, { recursive: true, force: true })
    await closeAdmin()
  })

  test('--count N prints exactly N bodies in order, acks them, leaves the rest', async () => {
    const queue = await queueWith('cli-consume-count', numbered(20))
    const run = await runCli(['consume', queue, '--count', '7'])
    assert.equal(run.code, 0, run.stderr)
    assert.equal(run.stdout, `${numbered(7).join('\n')}\n`)
    assert.match(run.stderr, /consumed 7 from queue .*: 7 acked/)
    assert.ok(isPlain(run.stdout + run.stderr))
    const rest = await drainQueue(queue)
    assert.deepEqual(rest.map((m) => m.content.toString()).sort(), numbered(20).slice(7).sort())
  })

  test('--json: one object per line with body, properties and headers; --requeue leaves them all', async () => {
    const queue = uniqueName('cli-consume-json')
    queues.push(queue)
    await declareQueue(queue)
    const published = await runCli(
      [
        'publish',
        queue,
        '--lines',
        '-H',
        'tenant=a',
        '--message-id',
        'id-{n}',
        '--content-type',
        'text/plain',
      ],
      { input: 'one\ntwo\nthree\n' },
    )
    assert.equal(published.code, 0, published.stderr)
    const run = await runCli(['consume', queue, '--json', '--count', '3', '--requeue'])
    assert.equal(run.code, 0, run.stderr)
    const lines = run.stdout.trimEnd().split('\n')
    assert.equal(lines.length, 3)
    const first = JSON.parse(lines[0] ?? '')
    assert.equal(first.body, 'one')
    assert.equal(first.bodyEncoding, 'utf8')
    assert.deepEqual(first.headers, { tenant: 'a' })
    assert.equal(first.properties.messageId, 'id-1')
    assert.equal(first.properties.contentType, 'text/plain')
    assert.equal(first.properties.deliveryMode, 2)
    assert.equal(first.routingKey, queue)
    assert.equal(first.redelivered, false)
    assert.match(run.stderr, /0 acked, 3 requeued/)
    assert.equal(await queueCount(queue), 3, '--requeue leaves every message in the queue')
  })

  test('--exec: acks on exit 0, retries a failing command until it succeeds; every message handled once', async () => {
    scratch = await mkdtemp(join(tmpdir(), 'lapinmq-cli-'))
    const bodies = numbered(30, 'job')
    const queue = await queueWith('cli-consume-exec', bodies)
    // Jobs ending in 3 fail on their first attempt; each success leaves a file named for its body.
    const script = `b=$(cat); if [ "\${b%3}" != "$b" ] && [ ! -e "${scratch}/tried-$b" ]; then touch "${scratch}/tried-$b"; exit 9; fi; touch "${scratch}/done-$b"; echo "did $b"`
    const run = await runCli([
      'consume',
      queue,
      '--exec',
      script,
      '--count',
      '30',
      '--concurrency',
      '4',
      '--retry-delay',
      '50',
    ])
    assert.equal(run.code, 0, run.stderr)
    const files = await readdir(scratch)
    const done = files.filter((f) => f.startsWith('done-')).map((f) => f.slice(5))
    const failedOnce = files.filter((f) => f.startsWith('tried-')).map((f) => f.slice(6))
    assert.deepEqual(done.sort(), [...bodies].sort(), 'every job succeeded exactly once')
    assert.deepEqual(failedOnce.sort(), ['job-13', 'job-23', 'job-3'])
    assert.equal(run.stdout.split('\n').filter((l) => l.startsWith('did ')).length, 30)
    assert.match(run.stderr, /consumed 33 from queue .*: 30 acked, 3 requeued, 3 command failures/)
    assert.equal((run.stderr.match(/command exited with 9 for delivery \d+; requeued/g) ?? []).length, 3)
    assert.equal(await queueCount(queue), 0)
  })

  test('--exec with --count stops after N successes even with several commands at once', async () => {
    const queue = await queueWith('cli-consume-exec-count', numbered(12))
    const run = await runCli([
      'consume',
      queue,
      '--exec',
      'cat >/dev/null; sleep 0.1',
      '--count',
      '5',
      '-c',
      '3',
    ])
    assert.equal(run.code, 0, run.stderr)
    assert.match(run.stderr, /: 5 acked/)
    assert.equal(await queueCount(queue), 7)
  })

  test('SIGTERM: a graceful stop, exit 0; what it acked is gone, the rest stays', async () => {
    const queue = await queueWith('cli-consume-sigterm', numbered(5))
    const child = spawnCli(['consume', queue])
    children.push(child)
    await child.waitUntil(() => child.stdout().split('\n').length > 5, 20_000, 'five messages printed')
    child.process.kill('SIGTERM')
    const run = await child.exited
    assert.equal(run.code, 0, run.stderr)
    assert.match(run.stderr, /consumed 5 from queue .*: 5 acked/)
    await publishRaw(queue, ['after'])
    assert.equal(await queueCount(queue), 1)
  })

  test('--count interrupted by SIGINT before N: exit 130; --idle ends an empty wait with 0', async () => {
    const queue = await queueWith('cli-consume-sigint', numbered(2))
    const child = spawnCli(['consume', queue, '--count', '10'])
    children.push(child)
    await child.waitUntil(() => child.stdout().split('\n').length > 2, 20_000, 'two messages printed')
    child.process.kill('SIGINT')
    const run = await child.exited
    assert.equal(run.code, 130, run.stderr)
    const idle = await runCli(['consume', queue, '--idle', '1'])
    assert.equal(idle.code, 0, idle.stderr)
    assert.equal(idle.stdout, '')
  })
})
