// `lapinmq pipe`, run as a user runs it: 5,000 messages moved with confirm-tied acks, interrupted by
// SIGINT midway (every message then in <from> or <to>, none twice), then run again to finish (all
// 5,000 ids in <to>, exactly once). (A missing queue: cli-missing-queues.test.ts.)
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
import { type CliChild, isPlain, killCli, runCli, spawnCli } from '../helpers/cli.ts'

const queues: string[] = []
const children: CliChild[] = []

async function newQueue(prefix: string): Promise<string> {
  const queue = uniqueName(prefix)
  queues.push(queue)
  await declareQueue(queue)
  return queue
}

describe('lapinmq pipe', () => {
  after(async () => {
    for (const child of children) killCli(child)
    for (const queue of queues) await deleteQueue(queue)
    await closeAdmin()
  })

  test('5,000 messages, SIGINT midway, run again: every id in <to> exactly once, <from> empty', async () => {
    const total = 5000
    const from = await newQueue('cli-pipe-from')
    const to = await newQueue('cli-pipe-to')
    const ids = Array.from({ length: total }, (_, i) => `m-${i}`)
    for (let i = 0; i < total; i += 1000) await publishRaw(from, ids.slice(i, i + 1000))

    // A small prefetch keeps the move slow enough to interrupt midway.
    const started = performance.now()
    const first = spawnCli(['pipe', from, to, '--prefetch', '5'])
    children.push(first)
    await first.waitUntil(async () => (await queueCount(to)) >= 500, 60_000, '500 messages moved')
    first.process.kill('SIGINT')
    const interrupted = await first.exited
    const firstMs = performance.now() - started
    assert.equal(interrupted.code, 130, interrupted.stderr)
    assert.match(interrupted.stderr, /interrupted: the rest is still in/)
    assert.ok(isPlain(interrupted.stdout + interrupted.stderr))
    const moved = Number(/moved ([\d,]+) messages/.exec(interrupted.stderr)?.[1]?.replaceAll(',', ''))
    const inFrom = await queueCount(from)
    const inTo = await queueCount(to)
    console.log(
      `interrupted after ${Math.round(firstMs)} ms: ${inTo} in <to>, ${inFrom} in <from>, moved ${moved}`,
    )
    assert.ok(inFrom > 0, 'interrupted midway: some messages still in <from>')
    assert.equal(inFrom + inTo, total, 'every message is in <from> or <to>, none twice')
    assert.equal(moved, inTo, 'what it says it moved is what <to> holds')

    const second = await runCli(['pipe', from, to, '--idle', '1'])
    assert.equal(second.code, 0, second.stderr)
    assert.match(second.stderr, new RegExp(`moved ${inFrom.toLocaleString('en-US')} messages? from`))
    assert.equal(await queueCount(from), 0)
    const arrived = (await drainQueue(to)).map((m) => m.content.toString())
    assert.equal(arrived.length, total, 'no duplicates')
    assert.deepEqual(new Set(arrived), new Set(ids), 'every id present')
  })

  test('properties and headers travel with the message', async () => {
    const from = await newQueue('cli-pipe-props-from')
    const to = await newQueue('cli-pipe-props-to')
    const published = await runCli(
      ['publish', from, 'payload', '-H', 'x-tenant=a', '--message-id', 'id-1', '--correlation-id', 'c-1'],
      {},
    )
    assert.equal(published.code, 0, published.stderr)
    const run = await runCli(['pipe', from, to, '--count', '1'])
    assert.equal(run.code, 0, run.stderr)
    const [message] = await drainQueue(to)
    assert.equal(message?.content.toString(), 'payload')
    assert.deepEqual(message?.properties.headers, { 'x-tenant': 'a' })
    assert.equal(message?.properties.messageId, 'id-1')
    assert.equal(message?.properties.correlationId, 'c-1')
    assert.equal(message?.properties.deliveryMode, 2)
  })

  test('same queue twice: a usage error', async () => {
    const run = await runCli(['pipe', 'q', 'q'])
    assert.equal(run.code, 2)
    assert.match(run.stderr, /<from> and <to> must be different queues/)
  })
})
