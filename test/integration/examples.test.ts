// The examples of README.md and docs/examples.md, run as they are (child processes through tsx, queue names from the
// environment): each delivers exactly the messages it is given, once, and exits 0 after SIGTERM.
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import {
  closeAdmin,
  declareQueue,
  deleteExchange,
  deleteQueue,
  drainQueue,
  operatorDeclaresQuorum,
  publishRaw,
  queueCount,
  uniqueName,
} from '../helpers/broker.ts'
import { killIfRunning, spawnTs, type TsChild } from '../helpers/child.ts'

const COUNT = 12
const bodies = Array.from({ length: COUNT }, (_, i) => `message ${i}`)
const upper = bodies.map((b) => b.toUpperCase())

const queues: string[] = []
const exchanges: string[] = []
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

/** A unique exchange name, deleted after the file. */
function freshExchange(prefix: string): string {
  const name = uniqueName(prefix)
  exchanges.push(name)
  return name
}

/** What each `<who> got <what>` line says, grouped by who (in the order printed). */
function gotBy(child: TsChild): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const line of child.lines) {
    const m = /^(\S+) got (.+)$/.exec(line)
    if (!m) continue
    const who = m[1] as string
    out[who] = [...(out[who] ?? []), m[2] as string]
  }
  return out
}

after(async () => {
  for (const child of children) killIfRunning(child)
  for (const queue of queues) await deleteQueue(queue)
  for (const exchange of exchanges) await deleteExchange(exchange)
  await closeAdmin()
})

describe('examples', () => {
  test('tracing.ts: the request, its publish and its processing make one trace, each span the next one’s parent', async () => {
    const queue = await freshQueue('ex-tracing')
    const child = run('tracing.ts', { QUEUE: queue })
    const { code } = await child.exited
    assert.equal(code, 0, child.stderr())
    const spans = printed(child, 'span ').map((line) => {
      const m = /^(.+) trace (\w+) id (\w+) parent (\w+) ?(.*)$/.exec(line)
      assert.ok(m, line)
      return { name: m[1], trace: m[2], id: m[3], parent: m[4], outcome: m[5] }
    })
    const request = spans.find((s) => s.name === 'POST /orders')
    const publish = spans.find((s) => s.name === `publish ${queue}`)
    const processing = spans.find((s) => s.name === `process ${queue}`)
    assert.ok(request && publish && processing, JSON.stringify(spans))
    assert.equal(spans.length, 3)
    assert.equal(new Set(spans.map((s) => s.trace)).size, 1, 'one trace')
    assert.equal(publish.parent, request.id)
    assert.equal(processing.parent, publish.id)
    assert.equal(processing.outcome, 'ack')
    assert.deepEqual(printed(child, 'processing order 42 in trace '), [request.trace])
    assert.equal(await queueCount(queue), 0)
  })

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

  test('work-queue.ts: each job done once, the jobs spread over both workers, the queue left empty', async (t) => {
    const queue = await freshQueue('ex-work', false)
    const child = run('work-queue.ts', { QUEUE: queue, COUNT: String(COUNT) })
    const { code } = await child.exited
    assert.equal(code, 0, child.stderr())
    assert.ok(child.lines.includes(`sent ${COUNT} jobs`), child.lines.join('\n'))
    const done = child.lines.flatMap((l) => {
      const m = /^(worker-[12]) did (.+)$/.exec(l)
      return m ? [{ worker: m[1] as string, job: m[2] as string }] : []
    })
    const jobs = Array.from({ length: COUNT }, (_, i) => `job ${i}`)
    assert.deepEqual(sorted(done.map((d) => d.job)), sorted(jobs), 'each job done exactly once')
    const byWorker = (w: string): number => done.filter((d) => d.worker === w).length
    t.diagnostic(`worker-1 did ${byWorker('worker-1')}, worker-2 did ${byWorker('worker-2')}`)
    for (const w of ['worker-1', 'worker-2']) assert.ok(byWorker(w) >= COUNT / 4, `${w} did ${byWorker(w)}`)
    assert.equal(await queueCount(queue), 0)
  })

  test("connection-pool.ts: one user on each of the pool's connections, each job done once, the queue left empty", async () => {
    const queue = await freshQueue('ex-pool', false)
    const child = run('connection-pool.ts', { QUEUE: queue, COUNT: String(COUNT) })
    const { code } = await child.exited
    assert.equal(code, 0, child.stderr())
    assert.ok(child.lines.includes('publishers and consumers per connection: 1, 1'), child.lines.join('\n'))
    const jobs = Array.from({ length: COUNT }, (_, i) => `job ${i}`)
    assert.deepEqual(sorted(printed(child, 'did ')), sorted(jobs))
    assert.equal(await queueCount(queue), 0)
  })

  test('pubsub-fanout.ts: every subscriber gets every message, in order; their temporary queues are gone after', async () => {
    const exchange = freshExchange('ex-fanout')
    const child = run('pubsub-fanout.ts', { EXCHANGE: exchange, SUBSCRIBERS: '3', COUNT: '5' })
    const { code } = await child.exited
    assert.equal(code, 0, child.stderr())
    const news = ['news 0', 'news 1', 'news 2', 'news 3', 'news 4']
    assert.deepEqual(gotBy(child), { 'subscriber-1': news, 'subscriber-2': news, 'subscriber-3': news })
    const temporary = child.lines.flatMap(
      (l) => /^subscriber-\d listening on (amq\.gen-\S+)$/.exec(l)?.[1] ?? [],
    )
    assert.equal(new Set(temporary).size, 3, child.lines.join('\n'))
    for (const queue of temporary) await assert.rejects(queueCount(queue), /NOT_FOUND|404/)
  })

  test('topic-routing.ts: each queue gets exactly the events its patterns match; an unmatched one is no error', async () => {
    const exchange = freshExchange('ex-topic')
    const prefix = uniqueName('ex-topic')
    for (const name of ['eu', 'created', 'audit']) queues.push(`${prefix}.${name}`)
    const child = run('topic-routing.ts', { EXCHANGE: exchange, QUEUE_PREFIX: prefix })
    const { code } = await child.exited
    assert.equal(code, 0, child.stderr())
    assert.ok(
      child.lines.includes('sent us.deleted'),
      'the event nobody subscribes to was sent, and confirmed',
    )
    assert.deepEqual(gotBy(child), {
      eu: ['eu.created', 'eu.deleted'], // eu.*
      created: ['eu.created', 'us.created'], // *.created
      audit: ['audit', 'audit.login.failed'], // audit.#: zero or more words
    })
    for (const name of ['eu', 'created', 'audit']) assert.equal(await queueCount(`${prefix}.${name}`), 0)
  })

  test("headers-routing.ts: 'x-match' all needs every header, any needs one; the routing key is ignored", async () => {
    const exchange = freshExchange('ex-headers')
    const prefix = uniqueName('ex-headers')
    for (const name of ['pdf-reports', 'urgent']) queues.push(`${prefix}.${name}`)
    const child = run('headers-routing.ts', { EXCHANGE: exchange, QUEUE_PREFIX: prefix })
    const { code } = await child.exited
    assert.equal(code, 0, child.stderr())
    assert.deepEqual(gotBy(child), {
      'pdf-reports': ['a pdf report', 'an urgent pdf report'],
      urgent: ['an urgent pdf report', 'an alert'],
    })
    for (const name of ['pdf-reports', 'urgent']) assert.equal(await queueCount(`${prefix}.${name}`), 0)
  })

  test('json-schema.ts: valid orders processed with the defaults applied; the bad two reported and dead-lettered', async () => {
    const queue = await freshQueue('ex-json', false)
    queues.push(`${queue}.invalid`)
    const child = run('json-schema.ts', { QUEUE: queue, COUNT: '3' })
    const { code } = await child.exited
    assert.equal(code, 0, child.stderr())
    assert.deepEqual(printed(child, 'processed: '), ['o-1 10.00 EUR', 'o-2 20.00 EUR', 'o-3 30.00 EUR'])
    const invalid = printed(child, 'invalid ')
    assert.equal(invalid.length, 2, child.lines.join('\n'))
    assert.match(invalid[0] as string, /^\(invalid\): amount: .+/)
    assert.equal(invalid[1], '(unparsable): (body): the body is not valid JSON')
    assert.equal(await queueCount(queue), 0, 'nothing requeued')
    const dead = (await drainQueue(`${queue}.invalid`)).map((m) => m.content.toString())
    assert.deepEqual(
      dead,
      ['{"id":"o-bad","amount":-5}', '{ not json'],
      'rejected without requeue, so dead-lettered',
    )
  })

  test('rpc-server.ts + rpc-client.ts: each call gets its own reply, a bad request an error reply, a queue nobody serves UNROUTABLE', async () => {
    const queue = await freshQueue('ex-rpc', false)
    const server = run('rpc-server.ts', { QUEUE: queue })
    await server.waitForLine((l) => l.startsWith('answering on '), 20_000, 'the server to start')
    const client = run('rpc-client.ts', { QUEUE: queue, COUNT: String(COUNT) })
    const { code } = await client.exited
    assert.equal(code, 0, client.stderr())
    const fibonacci = [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89]
    assert.deepEqual(client.lines, [
      ...fibonacci.map((f, n) => `fibonacci(${n}) = ${f}`),
      'n = -1: expected { "n": an integer in 0..78 }',
      `${queue}.nobody: UNROUTABLE`,
    ])
    server.process.kill('SIGTERM')
    const exited = await server.exited
    assert.equal(exited.signal, null)
    assert.equal(exited.code, 0, server.stderr())
    assert.equal(await queueCount(queue), 0, 'every request acked')
  })

  test('stats.ts: the Prometheus text counts every send and settle exactly: one rejected, the rest acked', async () => {
    const queue = await freshQueue('ex-stats', false)
    const child = run('stats.ts', { QUEUE: queue, COUNT: String(COUNT) })
    const { code } = await child.exited
    assert.equal(code, 0, child.stderr())
    const text = child.lines.join('\n')
    assert.match(text, /^lapinmq_publisher_outcomes_total\{outcome="confirmed"\} 12$/m)
    assert.match(text, /^lapinmq_publisher_outcomes_total\{outcome="returned"\} 0$/m)
    assert.match(
      text,
      new RegExp(`^lapinmq_consumer_settles_total\\{queue="${queue}",outcome="acked"\\} 11$`, 'm'),
    )
    assert.match(
      text,
      new RegExp(`^lapinmq_consumer_settles_total\\{queue="${queue}",outcome="rejected"\\} 1$`, 'm'),
    )
    assert.match(text, /^lapinmq_consumer_task_duration_seconds\{queue="[^"]+",quantile="0.99"\} \d/m)
    assert.match(text, /^confirm latency p50 \d+(\.\d+)? ms, p99 \d+(\.\d+)? ms$/m)
    assert.equal(await queueCount(queue), 0)
  })

  test('predeclared-quorum.ts: consumes an operator-declared quorum queue as it is, with no 406', async () => {
    const queue = await freshQueue('ex-quorum', false)
    await operatorDeclaresQuorum(queue)
    await publishRaw(queue, bodies)
    const child = run('predeclared-quorum.ts', { QUEUE: queue })
    await child.waitUntil(() => printed(child, 'received: ').length >= COUNT, 20_000, 'every message')
    child.process.kill('SIGTERM')
    const { code, signal } = await child.exited
    assert.equal(signal, null)
    assert.equal(code, 0, child.stderr())
    assert.doesNotMatch(child.stderr(), /error: |PRECONDITION_FAILED|406/)
    assert.deepEqual(sorted(printed(child, 'received: ')), sorted(bodies))
    assert.equal(await queueCount(queue), 0)
    // Still the operators' queue: a declare with their arguments is accepted (another would be refused).
    await operatorDeclaresQuorum(queue)
  })

  test('health.ts: /readyz and /livez answer 200 with the health as JSON while open; an unknown path 404', async () => {
    const queue = await freshQueue('ex-health')
    await publishRaw(queue, bodies)
    const child = run('health.ts', { QUEUE: queue, PORT: '0' })
    await child.waitUntil(() => printed(child, 'did ').length >= COUNT, 20_000, 'every message')
    const base = printed(child, 'probes on ')[0]
    assert.ok(base, child.lines.join('\n'))
    for (const path of ['/readyz', '/livez']) {
      const res = await fetch(`${base}${path}`)
      assert.equal(res.status, 200, path)
      const health = (await res.json()) as { state: string; ready: boolean; blocked: boolean; since: number }
      assert.equal(health.state, 'open')
      assert.equal(health.ready, true)
      assert.equal(health.blocked, false)
      assert.ok(health.since > Date.now() - 60_000 && health.since <= Date.now())
    }
    assert.equal((await fetch(`${base}/other`)).status, 404)
    child.process.kill('SIGTERM')
    const { code, signal } = await child.exited
    assert.equal(signal, null)
    assert.equal(code, 0, child.stderr())
    assert.deepEqual(sorted(printed(child, 'did ')), sorted(bodies))
  })

  test('logging.ts: nothing above info through a normal run; the consumer logs through a child bound to its queue', async () => {
    const queue = await freshQueue('ex-logging', false)
    const child = run('logging.ts', { QUEUE: queue, COUNT: '5' })
    const { code } = await child.exited
    assert.equal(code, 0, child.stderr())
    assert.deepEqual(sorted(printed(child, 'did ')), ['job 0', 'job 1', 'job 2', 'job 3', 'job 4'])
    const lines = child.lines
      .filter((l) => l.startsWith('{'))
      .map(
        (l) =>
          JSON.parse(l) as { level: string; msg?: string; app?: string; lapinmq?: string; queue?: string },
      )
    assert.deepEqual(
      lines.filter((l) => l.level === 'warn' || l.level === 'error'),
      [],
      'nothing above info',
    )
    assert.ok(lines.some((l) => l.level === 'info' && l.msg === 'lapinmq connected' && l.app === 'billing'))
    assert.ok(lines.some((l) => l.level === 'info' && l.msg === 'lapinmq connection closed'))
    const failed = lines.find((l) => l.msg === 'lapinmq: task failed')
    assert.ok(failed, child.lines.join('\n'))
    assert.equal(failed.level, 'debug')
    assert.deepEqual([failed.app, failed.lapinmq, failed.queue], ['billing', 'consumer', queue])
  })
})
