// The examples of README.md and docs/examples.md, run as they are (child processes through tsx, queue names from the
// environment): each delivers exactly the messages it is given, once, and exits 0 after SIGTERM.
import assert from 'node:assert/strict'
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
import { killIfRunning, spawnTs, type TsChild } from '../helpers/child.ts'

const COUNT = 12
const bodies = Array.from({ length: COUNT }, (_, i) => `message ${i}`)
const upper = bodies.map((b) => b.toUpperCase())

const queues: string[] = []
const children: TsChild[] = []

async function freshQueue(prefix: string, declare = true): Promise<string> {
  const name = uniqueName(prefix)
  queues.push(name)
  if (declare) await declareQueue(name)
  return name
}

function run(file: string, env: Record<string, string>): TsChild {
  const child = spawnTs(`examples/${file}`, env)
  children.push(child)
  return child
}

/** Lines starting with `prefix`, with the prefix removed. */
function printed(child: TsChild, prefix: string): string[] {
  return child.lines.filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length))
}

const sorted = (xs: readonly string[]): string[] => [...xs].sort()

after(async () => {
  for (const child of children) killIfRunning(child)
  for (const queue of queues) await deleteQueue(queue)
  await closeAdmin()
})

describe('examples', () => {
  test('first.ts: declares its queue, prints the three messages in order, leaves the queue empty', async () => {
    const queue = await freshQueue('ex-first', false)
    const child = run('first.ts', { QUEUE: queue })
    const { code } = await child.exited
    assert.equal(code, 0, child.stderr())
    assert.deepEqual(printed(child, 'received: '), ['one', 'two', 'three'])
    assert.equal(await queueCount(queue), 0)
  })

  test('send.ts: the queue holds exactly COUNT messages, in order', async () => {
    const queue = await freshQueue('ex-send')
    const child = run('send.ts', { QUEUE: queue, COUNT: String(COUNT) })
    const { code } = await child.exited
    assert.equal(code, 0, child.stderr())
    assert.deepEqual(printed(child, 'sent: '), bodies)
    const got = await drainQueue(queue)
    assert.deepEqual(
      got.map((m) => m.content.toString()),
      bodies,
    )
    assert.ok(
      got.every((m) => m.properties.deliveryMode === 2),
      'messages are persistent',
    )
  })

  test('receive.ts: prints each body once, leaves the queue empty, exits 0 on SIGTERM', async () => {
    const queue = await freshQueue('ex-receive')
    await publishRaw(queue, bodies)
    const child = run('receive.ts', { QUEUE: queue })
    await child.waitUntil(() => printed(child, 'received: ').length >= COUNT, 20_000, 'every message')
    child.process.kill('SIGTERM')
    const { code, signal } = await child.exited
    assert.equal(signal, null)
    assert.equal(code, 0, child.stderr())
    assert.deepEqual(sorted(printed(child, 'received: ')), sorted(bodies))
    assert.equal(await queueCount(queue), 0)
  })

  for (const [file, prefix] of [
    ['forward-sync.ts', 'forwarded: '],
    ['forward-async.ts', 'forwarded: '],
    ['custom-callback.ts', 'audit: '],
  ] as const) {
    test(`${file}: the output queue gets each transformed body once, the source ends empty`, async () => {
      const queue = await freshQueue('ex-in')
      const output = await freshQueue('ex-out')
      await publishRaw(queue, bodies)
      const child = run(file, { QUEUE: queue, OUTPUT_QUEUE: output })
      await child.waitUntil(() => printed(child, prefix).length >= COUNT, 20_000, 'every message')
      child.process.kill('SIGTERM')
      const { code, signal } = await child.exited
      assert.equal(signal, null)
      assert.equal(code, 0, child.stderr())
      assert.equal(printed(child, prefix).length, COUNT)
      assert.equal(await queueCount(queue), 0)
      const out = (await drainQueue(output)).map((m) => m.content.toString())
      if (file === 'forward-sync.ts') assert.deepEqual(out, upper, 'one at a time keeps the order')
      else assert.deepEqual(sorted(out), sorted(upper))
    })
  }

  for (const file of ['forward-sync.ts', 'forward-async.ts', 'custom-callback.ts']) {
    test(`${file}: SIGTERM mid-stream loses and duplicates nothing`, async (t) => {
      const total = 2000
      const many = Array.from({ length: total }, (_, i) => `m${i}`)
      const queue = await freshQueue('ex-in')
      const output = await freshQueue('ex-out')
      await publishRaw(queue, many)
      const child = run(file, { QUEUE: queue, OUTPUT_QUEUE: output })
      await child.waitForLine((l) => l.startsWith('forwarding '), 20_000, 'the consumer to start')
      await child.waitUntil(() => child.lines.length > 50, 20_000, 'some messages forwarded')
      child.process.kill('SIGTERM')
      const { code, signal } = await child.exited
      assert.equal(signal, null)
      assert.equal(code, 0, child.stderr())
      const out = (await drainQueue(output)).map((m) => m.content.toString())
      const left = (await drainQueue(queue)).map((m) => m.content.toString())
      t.diagnostic(`forwarded ${out.length}, left in the source ${left.length}`)
      assert.ok(
        out.length > 0 && left.length > 0,
        `stopped mid-stream (out ${out.length}, left ${left.length})`,
      )
      assert.equal(new Set(out).size, out.length, 'no message forwarded twice')
      const all = [...out.map((b) => b.toLowerCase()), ...left]
      assert.equal(all.length, total, `forwarded ${out.length} + left ${left.length}`)
      assert.deepEqual(sorted(all), sorted(many))
    })
  }

  test('custom-callback.ts: an unroutable output logs UNROUTABLE and drops the source without retry', async () => {
    const queue = await freshQueue('ex-in')
    const missing = await freshQueue('ex-missing', false)
    await publishRaw(queue, bodies)
    const child = run('custom-callback.ts', { QUEUE: queue, OUTPUT_QUEUE: missing })
    await child.waitForLine((l) => l.startsWith('forwarding '), 20_000, 'the consumer to start')
    const refused = (): string[] =>
      child
        .stderr()
        .split('\n')
        .filter((l) => l.startsWith('refused: '))
    await child.waitUntil(() => refused().length >= COUNT, 20_000, 'every refusal')
    child.process.kill('SIGTERM')
    const { code } = await child.exited
    assert.equal(code, 0, child.stderr())
    assert.deepEqual(
      refused(),
      bodies.map(() => 'refused: UNROUTABLE; dropping the source message'),
      'each message refused once, never retried',
    )
    assert.equal(printed(child, 'audit: ').length, 0)
    assert.equal(await queueCount(queue), 0)
  })
})
