// waitForSigterm: resolves false on its timeout, true on SIGTERM/SIGINT, and leaves no listeners;
// a consumer process that gets SIGTERM mid-task finishes the task, acks it and exits 0.
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { waitForSigterm } from 'lapinmq'
import {
  closeAdmin,
  declareQueue,
  deleteQueue,
  drainQueue,
  publishRaw,
  uniqueName,
} from '../helpers/broker.ts'
import { killIfRunning, spawnTs, type TsChild } from '../helpers/child.ts'

const queues: string[] = []
const children: TsChild[] = []

after(async () => {
  for (const child of children) killIfRunning(child)
  for (const queue of queues) await deleteQueue(queue)
  await closeAdmin()
})

const listeners = () => ({
  SIGTERM: process.listenerCount('SIGTERM'),
  SIGINT: process.listenerCount('SIGINT'),
})

describe('waitForSigterm', () => {
  test('resolves false after its timeout and removes its listeners', async () => {
    const before = listeners()
    const t0 = performance.now()
    const waiting = waitForSigterm(100)
    assert.deepEqual(listeners(), { SIGTERM: before.SIGTERM + 1, SIGINT: before.SIGINT + 1 })
    assert.equal(await waiting, false)
    const took = performance.now() - t0
    assert.ok(took >= 95 && took < 1000, `took ${Math.round(took)} ms`)
    assert.deepEqual(listeners(), before)
  })

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`resolves true on ${signal} and removes its listeners`, async () => {
      const before = listeners()
      const waiting = waitForSigterm(5000)
      process.kill(process.pid, signal)
      assert.equal(await waiting, true)
      assert.deepEqual(listeners(), before)
    })
  }

  test('rejects a negative or non-finite timeout', () => {
    const before = listeners()
    assert.throws(() => waitForSigterm(-1), RangeError)
    assert.throws(() => waitForSigterm(Number.NaN), RangeError)
    assert.deepEqual(listeners(), before)
  })

  test('a consumer process stops gracefully on SIGTERM: the task in progress is finished and acked', async () => {
    const queue = uniqueName('sigterm')
    queues.push(queue)
    await declareQueue(queue)
    const published = Array.from({ length: 10 }, (_, i) => `m${i}`)
    await publishRaw(queue, published)
    const child = spawnTs('test/fixtures/sigterm-consumer.ts', { QUEUE: queue, TASK_MS: '300' })
    children.push(child)
    await child.waitForLine((l) => l === 'ready', 20_000, 'ready')
    await child.waitForLine((l) => l === 'start m1', 20_000, 'the second task')
    await sleep(100) // mid-task
    const inProgress = child.lines.filter((l) => l.startsWith('start ')).map((l) => l.slice(6))
    const doneBefore = child.lines.filter((l) => l.startsWith('done ')).map((l) => l.slice(5))
    const interrupted = inProgress.filter((b) => !doneBefore.includes(b))
    assert.deepEqual(interrupted, ['m1'])
    child.process.kill('SIGTERM')
    const { code, signal } = await child.exited
    assert.equal(signal, null)
    assert.equal(code, 0, child.stderr())
    // SIGTERM landed mid-task: stop() began before m1 was done, and waited for it.
    const at = (line: string) => child.lines.indexOf(line)
    assert.ok(at('stopping true') >= 0 && at('stopping true') < at('done m1'), child.lines.join('\n'))
    assert.ok(at('done m1') < at('stopped'))
    assert.equal(child.lines.at(-1), 'stopped')

    const started = child.lines.filter((l) => l.startsWith('start ')).map((l) => l.slice(6))
    const processed = child.lines.filter((l) => l.startsWith('done ')).map((l) => l.slice(5))
    assert.deepEqual(processed, started, 'every task that started finished')
    assert.ok(processed.includes('m1'), 'the task SIGTERM interrupted was finished')
    const left = (await drainQueue(queue)).map((m) => m.content.toString())
    assert.ok(!left.includes('m1'), 'the interrupted message was acked')
    assert.deepEqual(
      left.filter((b) => processed.includes(b)),
      [],
    )
    assert.equal(processed.length + left.length, published.length)
    assert.deepEqual([...processed, ...left].sort(), [...published].sort())
  })
})
