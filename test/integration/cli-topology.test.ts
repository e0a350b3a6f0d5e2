// `lapinmq declare`, `delete` and `purge`, driven as a user would: what they declare routes, a
// conflicting redeclare exits 9 naming the argument, purge says how many it removed, delete
// removes. And the Connection verbs under them: a deleted exchange or queue that declare() kept is
// not brought back by a recovery.
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { Connection } from 'lapinmq'
import {
  brokerUrl,
  closeAdmin,
  deleteExchange,
  deleteQueue,
  publishRaw,
  queueCount,
  uniqueName,
  waitFor,
} from '../helpers/broker.ts'
import { runCli } from '../helpers/cli.ts'
import { TcpProxy } from '../helpers/tcp-proxy.ts'

const queues: string[] = []
const exchanges: string[] = []
after(async () => {
  for (const queue of queues) await deleteQueue(queue)
  for (const exchange of exchanges) await deleteExchange(exchange)
  await closeAdmin()
})

function names(prefix: string): { exchange: string; queue: string } {
  const exchange = uniqueName(`${prefix}-x`)
  const queue = uniqueName(`${prefix}-q`)
  exchanges.push(exchange)
  queues.push(queue)
  return { exchange, queue }
}

/** Whether the broker knows an exchange (a passive declare on a throwaway channel). */
async function exchangeExists(name: string): Promise<boolean> {
  const amqplib = await import('amqplib')
  const connection = await amqplib.connect(brokerUrl)
  try {
    const channel = await connection.createChannel()
    channel.on('error', () => {})
    await channel.checkExchange(name)
    return true
  } catch {
    return false
  } finally {
    await connection.close().catch(() => {})
  }
}

describe('lapinmq declare, delete, purge', () => {
  test('an exchange, a quorum queue with dead-lettering and a binding: a message routes through', async () => {
    const { exchange, queue } = names('cli-declare')
    for (const args of [
      ['declare', 'exchange', exchange, '--type', 'topic'],
      ['declare', 'queue', queue, '--type', 'quorum', '--dead-letter-exchange', '', '--max-length', '100'],
      ['declare', 'binding', '--exchange', exchange, '--queue', queue, '--routing-key', 'invoice.*'],
    ]) {
      const run = await runCli(args)
      assert.equal(run.code, 0, `${args.join(' ')}: ${run.stderr}`)
      assert.match(run.stderr, /^declared /)
    }
    const sent = await runCli([
      'publish',
      '--exchange',
      exchange,
      '--routing-key',
      'invoice.created',
      'hello',
    ])
    assert.equal(sent.code, 0, sent.stderr)
    assert.equal(await queueCount(queue), 1)
    const same = await runCli([
      'declare',
      'queue',
      queue,
      '--type',
      'quorum',
      '--dead-letter-exchange',
      '',
      '--max-length',
      '100',
    ])
    assert.equal(same.code, 0, `the same declaration again changes nothing: ${same.stderr}`)
    const other = await runCli([
      'declare',
      'queue',
      queue,
      '--type',
      'classic',
      '--dead-letter-exchange',
      '',
      '--max-length',
      '100',
    ])
    assert.equal(other.code, 9, other.stderr)
    assert.match(other.stderr, /PRECONDITION_FAILED.*x-queue-type/)
    assert.doesNotMatch(other.stderr, /--queue-arg/, "consume's hint does not apply here")
  })

  test('an exchange-to-exchange binding routes through; --arg keeps its type', async () => {
    const { exchange, queue } = names('cli-e2e')
    const downstream = uniqueName('cli-e2e-down')
    exchanges.push(downstream)
    const steps = [
      ['declare', 'exchange', exchange, '--type', 'fanout'],
      ['declare', 'exchange', downstream, '--type', 'direct', '--transient'],
      ['declare', 'queue', queue, '--arg', 'x-message-ttl=60000'],
      ['declare', 'binding', '--exchange', exchange, '--to-exchange', downstream],
      ['declare', 'binding', '--exchange', downstream, '--queue', queue, '-k', 'k'],
    ]
    for (const args of steps) {
      const run = await runCli(args)
      assert.equal(run.code, 0, `${args.join(' ')}: ${run.stderr}`)
    }
    const sent = await runCli(['publish', '--exchange', exchange, '--routing-key', 'k', 'through'])
    assert.equal(sent.code, 0, sent.stderr)
    assert.equal(await queueCount(queue), 1)
    const typed = await runCli(['declare', 'queue', queue, '--arg', 'x-message-ttl=60000'])
    assert.equal(typed.code, 0, `a number stays a number, so the redeclare matches: ${typed.stderr}`)
  })

  test('purge says how many it removed; delete removes; a missing queue to purge exits 6', async () => {
    const { exchange, queue } = names('cli-purge')
    assert.equal((await runCli(['declare', 'queue', queue])).code, 0)
    await publishRaw(queue, ['a', 'b', 'c'])
    await waitFor(async () => (await queueCount(queue)) === 3, 5_000, 'three messages')
    const purged = await runCli(['purge', queue])
    assert.equal(purged.code, 0, purged.stderr)
    assert.equal(purged.stderr, `purged 3 messages from queue '${queue}'\n`)
    assert.equal(await queueCount(queue), 0)
    assert.equal((await runCli(['delete', 'queue', queue])).code, 0)
    assert.equal((await runCli(['queue', queue])).code, 6, 'the queue is gone')
    assert.equal((await runCli(['purge', queue])).code, 6)
    assert.equal((await runCli(['declare', 'exchange', exchange])).code, 0)
    assert.equal(await exchangeExists(exchange), true)
    const deleted = await runCli(['delete', 'exchange', exchange])
    assert.equal(deleted.code, 0, deleted.stderr)
    assert.equal(await exchangeExists(exchange), false)
    assert.equal((await runCli(['delete', 'exchange', exchange])).code, 0, 'deleting what is gone succeeds')
  })

  test('usage errors exit 2 and say what is wrong', async () => {
    const cases: [string[], RegExp][] = [
      [['declare', 'binding', '--exchange', 'x'], /give --queue or --to-exchange/],
      [['declare', 'exchange', 'x', '--type', 'fast'], /type/],
      [['declare', 'queue', 'q', '--type', 'lazy'], /type/],
      [['declare', 'queue', 'amq.nope'], /amq\./],
      [['delete', 'exchange', 'amq.topic'], /built in/],
      [['declare', 'queue'], /missing required argument/],
    ]
    for (const [args, message] of cases) {
      const run = await runCli(args)
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`)
      assert.match(run.stderr, message, args.join(' '))
    }
  })
})

describe('Connection.deleteExchange, deleteQueue, purgeQueue', () => {
  test('what declare() kept and the user deleted is not declared again after a recovery', async () => {
    const proxy = await TcpProxy.start()
    const { exchange, queue } = names('conn-delete')
    const kept = uniqueName('conn-delete-kept')
    queues.push(kept)
    const connection = new Connection({ url: proxy.url(), recovery: { initialDelay: 10, maxDelay: 50 } })
    connection.on('error', () => {})
    try {
      await connection.declare({
        exchanges: [{ name: exchange, type: 'fanout', durable: false }],
        queues: [
          { name: queue, durable: false },
          { name: kept, durable: false },
        ],
        bindings: [
          { exchange, queue },
          { exchange, queue: kept },
        ],
      })
      await publishRaw(queue, ['x', 'y'])
      assert.equal(await connection.purgeQueue(queue), 2)
      await connection.deleteExchange(exchange)
      await connection.deleteQueue(queue)
      let reconnected = false
      connection.on('connected', () => {
        reconnected = true
      })
      proxy.cut()
      await waitFor(() => reconnected, 10_000, 'the recovery')
      await waitFor(async () => (await queueCount(kept).catch(() => -1)) === 0, 5_000, 'the kept queue back')
      assert.equal(await exchangeExists(exchange), false, 'the deleted exchange stays deleted')
      assert.equal(await queueCount(queue).catch(() => -1), -1, 'the deleted queue stays deleted')
      await assert.rejects(() => connection.purgeQueue(queue), { code: 'NOT_FOUND' })
    } finally {
      await connection.close()
      await proxy.close()
    }
  })
})
