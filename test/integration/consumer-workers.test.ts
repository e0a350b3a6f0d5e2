// Worker-thread consumers (`taskModule` + `workerThreads`). Statuses come back from the
// workers and the ack happens on the main thread; bad modules and a missing piscina fail the start;
// a worker that dies means retry later; a task past its deadline has its worker terminated; stop()
// waits for busy workers (bounded by its timeout) and leaves no thread running.
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Consumer, type LapinError, MessageStatus, Publisher, RpcClient, type TaskTimeoutInfo } from 'lapinmq'
import { declareQueue, drainQueue, queueCount, uniqueName, waitFor } from '../helpers/broker.ts'
import { killIfRunning, spawnTs, type TsChild } from '../helpers/child.ts'
import { cleanedUpAfterFile } from '../helpers/fixtures.ts'
import { listenToWorkerTasks, threadCount, workerTaskModule } from '../helpers/worker-tasks.ts'

const { consumers, queues } = cleanedUpAfterFile()

async function freshQueue(prefix: string): Promise<string> {
  const queue = uniqueName(prefix)
  queues.push(queue)
  await declareQueue(queue)
  return queue
}

async function publish(queue: string, messages: { id: string; headers?: Record<string, unknown> }[]) {
  const publisher = new Publisher({ kind: 'async' })
  await publisher.start()
  await Promise.all(
    messages.map(({ id, headers }) =>
      publisher.sendMessageToQueue(queue, `body of ${id}`, { messageId: id, headers: headers ?? {} }),
    ),
  )
  await publisher.stop()
}

function workerConsumer(queue: string, extra: Partial<ConstructorParameters<typeof Consumer>[0]> = {}) {
  const consumer = new Consumer({
    queueName: queue,
    taskModule: workerTaskModule,
    workerThreads: 2,
    ...extra,
  })
  consumers.push(consumer)
  return consumer
}

/** Waits until this process runs no more threads than `baseline` (worker threads end asynchronously). */
async function threadsBackTo(baseline: number): Promise<number> {
  let now = await threadCount()
  for (let i = 0; i < 50 && now > baseline; i++) {
    await sleep(100)
    now = await threadCount()
  }
  return now
}

describe('worker-thread consumers', () => {
  test('options: taskFunction xor taskModule, workerThreads with taskModule only', () => {
    const taskFunction = () => MessageStatus.SUCCESS
    const taskModule = workerTaskModule
    assert.throws(
      () => new Consumer({ queueName: 'q', taskFunction, taskModule, workerThreads: 1 }),
      /either taskFunction or taskModule/,
    )
    assert.throws(() => new Consumer({ queueName: 'q' }), /taskFunction must be a function/)
    assert.throws(
      () => new Consumer({ queueName: 'q', taskFunction, workerThreads: 2 }),
      /workerThreads needs taskModule/,
    )
    assert.throws(() => new Consumer({ queueName: 'q', taskModule }), /taskModule needs workerThreads/)
    assert.throws(
      () => new Consumer({ queueName: 'q', taskModule, workerThreads: 0 }),
      /workerThreads must be an integer/,
    )
  })

  test('a module without a default export fails start() with TASK_MODULE_INVALID; no thread is left', async () => {
    const queue = await freshQueue('workers-bad-module')
    const baseline = await threadCount()
    const consumer = workerConsumer(queue, {
      taskModule: new URL('../fixtures/worker-task-no-default.ts', import.meta.url),
    })
    await assert.rejects(consumer.start(), (err: LapinError) => {
      assert.equal(err.code, 'TASK_MODULE_INVALID')
      assert.match(err.message, /no default export that is a function/)
      return true
    })
    assert.ok((await threadsBackTo(baseline)) <= baseline, 'the pool was destroyed')
  })

  for (const [what, module, message] of [
    ['throws while it loads', '../fixtures/worker-task-throws-on-load.ts', /this task module fails to load/],
    ['does not exist', '../fixtures/no-such-worker-task.ts', /no-such-worker-task/],
  ] as const) {
    test(`a module that ${what} fails start() with TASK_MODULE_INVALID; no thread is left`, async () => {
      const queue = await freshQueue('workers-unloadable')
      const baseline = await threadCount()
      const consumer = workerConsumer(queue, { taskModule: new URL(module, import.meta.url) })
      await assert.rejects(consumer.start(), (err: LapinError) => {
        assert.equal(err.code, 'TASK_MODULE_INVALID')
        assert.match(err.message, /could not load taskModule/)
        assert.match(err.message, message)
        return true
      })
      assert.ok((await threadsBackTo(baseline)) <= baseline, 'the pool was destroyed')
    })
  }

  let child: TsChild | undefined
  after(() => killIfRunning(child))
  test('without piscina installed, start() rejects with PISCINA_NOT_INSTALLED', async () => {
    const queue = await freshQueue('workers-no-piscina')
    child = spawnTs('test/fixtures/no-piscina.ts', { QUEUE: queue })
    const { code } = await child.exited
    assert.equal(code, 0, child.stderr())
    assert.equal(child.lines[0], 'PISCINA_NOT_INSTALLED ERR_MODULE_NOT_FOUND')
    assert.match(child.lines[1] ?? '', /npm install piscina/)
  })

  test('a worker that dies means retry later: the message comes back once and is acked; the pool goes on', async () => {
    const queue = await freshQueue('workers-exit')
    const calls = listenToWorkerTasks()
    await publish(queue, [{ id: 'dies', headers: { result: 'exit', onlyFirst: true } }, { id: 'after' }])
    const consumer = workerConsumer(queue, { workerThreads: 1 })
    const errors: LapinError[] = []
    consumer.on('error', (e) => errors.push(e))
    try {
      await consumer.start()
      const ends = () => calls.calls.filter((c) => c.event === 'end')
      await waitFor(() => ends().length >= 3, 10_000, 'three task runs')
      await waitFor(async () => (await queueCount(queue)) === 0 && consumer.unsettled === 0, 5_000, 'settled')
      const starts = calls.calls.filter((c) => c.event === 'start')
      assert.deepEqual(
        starts.filter((c) => c.messageId === 'dies').map((c) => c.redelivered),
        [false, true],
        'retried once, after its worker died',
      )
      assert.equal(starts.filter((c) => c.messageId === 'after').length, 1)
      const first = starts.find((c) => c.messageId === 'dies')
      assert.ok(
        starts.filter((c) => c !== first).every((c) => c.threadId !== first?.threadId),
        'a new worker replaced the one that died',
      )
      assert.equal(consumer.staleSettles, 0)
    } finally {
      calls.close()
      await consumer.stop()
    }
  })

  test('with retry, a failure in a worker goes along the ladder; the worker sees the attempt', async () => {
    const queue = await freshQueue('workers-retry')
    queues.push(`${queue}.retry.100`, `${queue}.dead`)
    const calls = listenToWorkerTasks()
    await publish(queue, [{ id: 'retried', headers: { result: 'fail_retry_later', onlyFirst: true } }])
    const consumer = workerConsumer(queue, { workerThreads: 1, retry: { delays: [100] } })
    try {
      await consumer.start()
      await waitFor(() => calls.calls.filter((c) => c.event === 'end').length === 2, 10_000, 'two runs')
      const starts = calls.calls.filter((c) => c.event === 'start')
      assert.deepEqual(
        starts.map((c) => [c.attempt, c.redelivered]),
        [
          [1, false],
          [2, false],
        ],
        'the second run is a new delivery from the delay queue, attempt 2',
      )
      await waitFor(async () => (await queueCount(queue)) === 0 && consumer.unsettled === 0, 5_000, 'settled')
      assert.equal(await queueCount(`${queue}.dead`), 0)
    } finally {
      calls.close()
      await consumer.stop()
    }
  })

  test('statuses from workers decide the ack on the main thread; body, properties and headers arrive', async () => {
    const queue = await freshQueue('workers-statuses')
    const calls = listenToWorkerTasks()
    const errors: LapinError[] = []
    await publish(queue, [
      { id: 'ok' },
      { id: 'drop', headers: { result: 'fail_do_not_retry' } },
      { id: 'retry', headers: { result: 'fail_retry_later', onlyFirst: true } },
      { id: 'throw', headers: { result: 'throw', onlyFirst: true } },
      { id: 'junk', headers: { result: 'junk', onlyFirst: true } },
      { id: 'callback', headers: { result: 'handled_via_callback', onlyFirst: true } },
    ])
    const consumer = workerConsumer(queue)
    consumer.on('error', (e) => errors.push(e))
    try {
      await consumer.start()
      const ends = () => calls.calls.filter((c) => c.event === 'end')
      await waitFor(() => ends().length >= 10, 10_000, 'ten task runs')
      await waitFor(async () => (await queueCount(queue)) === 0 && consumer.unsettled === 0, 5_000, 'settled')
      const runs = (id: string) => ends().filter((c) => c.messageId === id)
      assert.equal(runs('ok').length, 1)
      assert.equal(runs('drop').length, 1, 'FAIL_DO_NOT_RETRY: rejected, not requeued')
      for (const id of ['retry', 'throw', 'junk', 'callback']) {
        assert.deepEqual(
          runs(id).map((c) => c.redelivered),
          [false, true],
          `${id}: retried once`,
        )
      }
      const ok = runs('ok')[0]
      assert.equal(ok?.body, 'body of ok', 'the body arrived as a Buffer')
      assert.equal(ok?.routingKey, queue)
      assert.deepEqual(
        errors.map((e) => e.code),
        ['WORKER_CALLBACK_UNSUPPORTED'],
        'HANDLED_VIA_CALLBACK from a worker is reported',
      )
    } finally {
      calls.close()
      await consumer.stop()
    }
  })

  test('a worker task may return a reply: the main thread sends it to replyTo, then settles by its status', async () => {
    const queue = await freshQueue('workers-replies')
    const errors: LapinError[] = []
    const consumer = workerConsumer(queue)
    consumer.on('error', (e) => errors.push(e))
    const rpc = new RpcClient({ timeout: 10_000 })
    try {
      await consumer.start()
      const raw = await rpc.call(queue, 'ping', { headers: { result: 'reply' } })
      assert.equal(raw.body.toString(), 'worker: ping')
      const json = await rpc.call(queue, 'pong', { headers: { result: 'replyJson' } })
      assert.deepEqual(json.json(), { body: 'pong', attempt: 1 })
      assert.equal(json.properties.contentType, 'application/json')
      assert.equal(typeof json.headers['x-thread'], 'number')
      // The status decides the settle: FAIL_DO_NOT_RETRY after the reply drops the request.
      const dropped = await rpc.call(queue, 'drop', {
        headers: { result: 'replyJson', replyStatus: 'fail_do_not_retry' },
      })
      assert.deepEqual(dropped.json(), { body: 'drop', attempt: 1 })
      // A message without replyTo: the missing replyTo is reported and the message settled by its status.
      await publish(queue, [{ id: 'no-reply-to', headers: { result: 'reply' } }])
      await waitFor(() => errors.length === 1, 5_000, 'the NO_REPLY_TO error')
      assert.equal(errors[0]?.code, 'NO_REPLY_TO')
      await waitFor(async () => (await queueCount(queue)) === 0 && consumer.unsettled === 0, 5_000, 'settled')
      // HANDLED_VIA_CALLBACK with a reply: reported, no reply sent, the request retried (and then
      // answered by a plain success without a reply, so the call times out).
      const callback = rpc.call(queue, 'callback', {
        timeout: 1_500,
        headers: { result: 'replyJson', replyStatus: 'handled_via_callback', onlyFirst: true },
      })
      const err = await callback.then(
        () => assert.fail('a reply was sent for HANDLED_VIA_CALLBACK'),
        (e: LapinError) => e,
      )
      assert.equal(err.code, 'RPC_TIMEOUT')
      assert.deepEqual(
        errors.map((e) => e.code),
        ['NO_REPLY_TO', 'WORKER_CALLBACK_UNSUPPORTED'],
      )
      await waitFor(async () => (await queueCount(queue)) === 0 && consumer.unsettled === 0, 5_000, 'settled')
    } finally {
      await rpc.stop()
      await consumer.stop()
    }
  })

  test('a worker task past taskTimeout: its worker is terminated, the message requeued once', async (t) => {
    const queue = await freshQueue('workers-timeout')
    const calls = listenToWorkerTasks()
    await publish(queue, [{ id: 'stuck', headers: { busyMs: 60_000, onlyFirst: true } }])
    const timeouts: TaskTimeoutInfo[] = []
    // The deadline runs from the dispatch, so the replacement worker's start-up counts against the
    // redelivery's: on a loaded machine that start-up alone has taken over 500 ms.
    const consumer = workerConsumer(queue, { workerThreads: 1, taskTimeout: 3_000 })
    consumer.on('taskTimeout', (info) => timeouts.push(info))
    try {
      await consumer.start()
      await waitFor(() => calls.calls.some((c) => c.event === 'end'), 10_000, 'the redelivery to end')
      await waitFor(async () => (await queueCount(queue)) === 0 && consumer.unsettled === 0, 5_000, 'settled')
      t.diagnostic(JSON.stringify({ timeouts, calls: calls.calls }))
      const starts = calls.calls.filter((c) => c.event === 'start')
      assert.deepEqual(
        starts.map((c) => c.redelivered),
        [false, true],
      )
      assert.notEqual(starts[0]?.threadId, starts[1]?.threadId, 'the stuck worker was replaced')
      assert.equal(timeouts.length, 1)
      assert.equal(timeouts[0]?.inWorker, true)
      assert.equal(timeouts[0]?.action, 'requeued')
    } finally {
      calls.close()
      await consumer.stop()
    }
  })

  test('stop() waits for busy workers, every ack reaches the broker, then no worker thread is left', async (t) => {
    const queue = await freshQueue('workers-stop')
    const calls = listenToWorkerTasks()
    await publish(queue, [
      { id: 'busy-1', headers: { busyMs: 1_500 } },
      { id: 'busy-2', headers: { busyMs: 1_500 } },
    ])
    const baseline = await threadCount()
    const consumer = workerConsumer(queue)
    try {
      await consumer.start()
      const during = await threadCount()
      await waitFor(() => calls.calls.filter((c) => c.event === 'start').length === 2, 10_000, 'both started')
      const t0 = performance.now()
      await consumer.stop({ timeout: 10_000 })
      const took = performance.now() - t0
      const after = await threadsBackTo(baseline)
      t.diagnostic(
        `threads: ${baseline} before, ${during} with 2 workers, ${after} after stop; stop took ${Math.round(took)} ms`,
      )
      assert.equal(
        calls.calls.filter((c) => c.event === 'end').length,
        2,
        'both tasks finished before stop resolved',
      )
      assert.ok(took >= 1_000 && took < 5_000, `stop took ${Math.round(took)} ms`)
      assert.ok(during >= baseline + 2, 'the pool ran two threads')
      assert.ok(after <= baseline, 'no worker thread left')
      assert.equal(await queueCount(queue), 0, 'both acks reached the broker')
    } finally {
      calls.close()
    }
  })

  test('stop({ timeout }) shorter than a busy task: the worker is terminated, its message requeued', async (t) => {
    const queue = await freshQueue('workers-stop-timeout')
    const calls = listenToWorkerTasks()
    await publish(queue, [{ id: 'long', headers: { busyMs: 20_000 } }])
    const baseline = await threadCount()
    const consumer = workerConsumer(queue, { workerThreads: 1 })
    try {
      await consumer.start()
      await waitFor(() => calls.calls.some((c) => c.event === 'start'), 10_000, 'the task to start')
      const t0 = performance.now()
      await consumer.stop({ timeout: 300 })
      const took = performance.now() - t0
      const after = await threadsBackTo(baseline)
      t.diagnostic(`stop took ${Math.round(took)} ms; threads ${baseline} before, ${after} after`)
      assert.ok(took >= 290 && took < 3_000, `stop took ${Math.round(took)} ms`)
      assert.ok(after <= baseline, 'the busy worker was terminated')
      assert.equal(calls.calls.filter((c) => c.event === 'end').length, 0)
      const left = await drainQueue(queue)
      assert.deepEqual(
        left.map((m) => m.properties.messageId),
        ['long'],
        'the message was requeued',
      )
    } finally {
      calls.close()
    }
  })
})
