// The pure pieces of heavy-task handling: task deadlines (one sweep, start order), the event-loop
// watchdog, the consumer_timeout close and the worker-mode options.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { LoopWatchdog } from '../../src/connection/loop-watchdog.ts'
import { resolveConsumerOptions } from '../../src/consumer/options.ts'
import { consumerTimeoutError, TaskDeadline } from '../../src/consumer/task-deadline.ts'
import { LapinError } from '../../src/errors.ts'

test('TaskDeadline times out tasks at their deadline, once, in start order; untrack tells a timed-out task', () => {
  const timedOut: string[] = []
  const deadline = new TaskDeadline<{ id: string }>(1_000, (key) => timedOut.push(key.id))
  const a = { id: 'a' }
  const b = { id: 'b' }
  const c = { id: 'c' }
  deadline.track(a)
  deadline.track(b)
  deadline.track(c)
  const now = performance.now()
  deadline.sweep(now + 500)
  assert.deepEqual(timedOut, [])
  assert.equal(deadline.untrack(b), true, 'b ended in time')
  deadline.sweep(now + 1_001)
  assert.deepEqual(timedOut, ['a', 'c'])
  deadline.sweep(now + 5_000)
  assert.deepEqual(timedOut, ['a', 'c'], 'never twice')
  assert.equal(deadline.untrack(a), false, 'a had timed out: its late result is ignored')
  assert.equal(deadline.size, 0)
})

test('TaskDeadline sweeps on an unref’d timer, stopped by stop()', async () => {
  const timedOut: number[] = []
  const deadline = new TaskDeadline<object>(50, () => timedOut.push(performance.now()))
  deadline.start()
  const t0 = performance.now()
  deadline.track({})
  await new Promise((r) => setTimeout(r, 150))
  deadline.stop()
  assert.equal(timedOut.length, 1)
  assert.ok((timedOut[0] ?? 0) - t0 >= 50 && (timedOut[0] ?? 0) - t0 < 120)
})

test('LoopWatchdog reports a stall past half the heartbeat once the loop runs again, and nothing else', async () => {
  const reports: [number, number][] = []
  const watchdog = new LoopWatchdog((delayMs, heartbeatMs) => reports.push([delayMs, heartbeatMs]))
  watchdog.start(400)
  await new Promise((r) => setTimeout(r, 150))
  const end = performance.now() + 150 // below half the heartbeat
  while (performance.now() < end) {
    // blocked
  }
  await new Promise((r) => setTimeout(r, 150))
  assert.deepEqual(reports, [])
  const end2 = performance.now() + 500
  while (performance.now() < end2) {
    // blocked
  }
  await new Promise((r) => setTimeout(r, 150))
  watchdog.stop()
  assert.equal(reports.length, 1)
  assert.equal(reports[0]?.[1], 400)
  assert.ok((reports[0]?.[0] ?? 0) >= 400, `reported ${reports[0]?.[0]} ms`)
  watchdog.stop()
  watchdog.start(0)
  assert.equal(watchdog.heartbeatMs, 0, 'heartbeat 0: not watching')
})

test('consumerTimeoutError recognises the broker closing a channel for consumer_timeout', () => {
  const text =
    'PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. Timeout value used: 5000 ms. This timeout value can be configured, see consumers doc guide to learn more'
  const closed = new LapinError('PRECONDITION_FAILED', `channel closed by the broker: ${text}`, {
    replyCode: 406,
    replyText: text,
  })
  const error = consumerTimeoutError(closed)
  assert.equal(error?.code, 'CONSUMER_TIMEOUT')
  assert.equal(error?.replyCode, 406)
  assert.equal(error?.cause, closed)
  const other = new LapinError('PRECONDITION_FAILED', 'unknown delivery tag 3', { replyCode: 406 })
  assert.equal(consumerTimeoutError(other), undefined)
  assert.equal(consumerTimeoutError(undefined), undefined)
})

test('worker-mode options: defaults from workerThreads, task module as a file URL', () => {
  const r = resolveConsumerOptions({ queueName: 'q', taskModule: 'tasks/resize.js', workerThreads: 3 })
  assert.equal(r.concurrency, 3)
  assert.equal(r.prefetch, 3)
  assert.equal(r.workers?.taskModule, new URL(`file://${process.cwd()}/tasks/resize.js`).href)
  assert.equal(r.taskTimeout, 25 * 60_000)
  assert.equal(r.onTaskTimeout, 'requeue')
  const url = new URL('file:///srv/app/task.mjs')
  assert.equal(
    resolveConsumerOptions({ queueName: 'q', taskModule: url, workerThreads: 1 }).workers?.taskModule,
    url.href,
  )
  const main = resolveConsumerOptions({
    queueName: 'q',
    taskFunction: () => 'success',
    taskTimeout: Infinity,
  })
  assert.equal(main.workers, undefined)
  assert.equal(main.taskTimeout, 0, 'Infinity: no deadline')
  assert.equal(main.concurrency, 1)
})
