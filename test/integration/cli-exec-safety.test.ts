// `lapinmq consume --exec` with messages and signals that are hard on it: metadata that cannot go in
// an environment (a NUL byte, headers too big) is left out and the command runs on the body; the
// commands get no broker credentials; a message that always fails is rejected after
// --max-attempts; and Ctrl-C lets running commands finish (a second Ctrl-C ends them).
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import * as amqplib from 'amqplib'
import {
  brokerUrl,
  closeAdmin,
  declareQueue,
  deleteQueue,
  drainQueue,
  publishRaw,
  queueCount,
  uniqueName,
} from '../helpers/broker.ts'
import { type CliChild, ctrlC, killCli, runCliWithin, spawnCli } from '../helpers/cli.ts'

const queues: string[] = []
const children: CliChild[] = []
let scratch = ''

async function newQueue(prefix: string, args?: Record<string, unknown>): Promise<string> {
  const queue = uniqueName(prefix)
  queues.push(queue)
  await declareQueue(queue, { durable: true, ...(args ? { arguments: args } : {}) })
  return queue
}

/** Publishes with amqplib directly: properties the CLI's own publish would not send. */
async function publishWith(queue: string, body: string, options: amqplib.Options.Publish): Promise<void> {
  const url = new URL(brokerUrl)
  url.searchParams.set('frameMax', '131072') // room for big headers
  const conn = await amqplib.connect(url.href)
  try {
    const ch = await conn.createConfirmChannel()
    ch.sendToQueue(queue, Buffer.from(body), options)
    await ch.waitForConfirms()
  } finally {
    await conn.close()
  }
}

describe('lapinmq consume --exec', () => {
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'lapinmq-exec-'))
  })
  after(async () => {
    for (const child of children) killCli(child)
    for (const queue of queues) await deleteQueue(queue)
    await rm(scratch, { recursive: true, force: true })
    await closeAdmin()
  })

  test('a message id with a NUL byte, headers too big for the environment: the command runs on the body, a warning, --count ends', async () => {
    const queue = await newQueue('cli-exec-metadata')
    await publishWith(queue, 'nul-id', { messageId: 'id\u0000x', persistent: true })
    // JSON spells each control character in six bytes: far beyond what one variable may hold.
    await publishWith(queue, 'big-headers', { headers: { big: '\u0001'.repeat(60_000) }, persistent: true })
    const out = join(scratch, 'metadata-bodies')
    const run = await runCliWithin(20_000, [
      'consume',
      queue,
      '--exec',
      `cat >> '${out}'; echo " id=$LAPINMQ_MESSAGE_ID" >> '${out}'`,
      '--count',
      '2',
    ])
    assert.equal(run.code, 0, run.stderr)
    assert.deepEqual((await readFile(out, 'utf8')).split('\n').sort(), ['', 'big-headers id=', 'nul-id id='])
    assert.match(run.stderr, /LAPINMQ_MESSAGE_ID left out.*NUL/)
    assert.match(run.stderr, /LAPINMQ_HEADERS left out.*too big/)
    assert.match(run.stderr, /: 2 acked/)
    assert.equal(await queueCount(queue), 0)
  })

  test('commands get no broker credentials in their environment', async () => {
    const queue = await newQueue('cli-exec-env')
    await publishRaw(queue, ['x'])
    const out = join(scratch, 'env')
    const url = new URL(brokerUrl)
    const run = await runCliWithin(
      20_000,
      ['consume', queue, '--exec', `cat >/dev/null; env > '${out}'`, '--count', '1'],
      {
        env: {
          RABBITMQ_URL: url.href,
          RABBITMQ_USERNAME: decodeURIComponent(url.username),
          RABBITMQ_PASSWORD: 'pw-in-env',
          RABBITMQ_KEY_FILE: '/secret/client.key',
        },
      },
    )
    assert.equal(run.code, 0, run.stderr)
    const env = await readFile(out, 'utf8')
    assert.match(env, /^LAPINMQ_QUEUE=/m, 'the command got its own variables')
    assert.doesNotMatch(env, /^RABBITMQ_/m)
    assert.ok(!env.includes('pw-in-env') && !env.includes(url.href), 'no password, no URL')
  })

  test('--max-attempts 3: a command that always fails (exit 127) is tried 3 times, then the message is dead-lettered and the run ends', async () => {
    const dlq = await newQueue('cli-exec-dlq')
    const queue = await newQueue('cli-exec-attempts', {
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': dlq,
    })
    await publishWith(queue, 'with-id', { messageId: 'm-1', persistent: true })
    await publishRaw(queue, ['without-id'])
    const attempts = join(scratch, 'attempts')
    const run = await runCliWithin(20_000, [
      'consume',
      queue,
      '--exec',
      `cat >> '${attempts}'; echo >> '${attempts}'; exit 127`,
      '--max-attempts',
      '3',
      '--retry-delay',
      '0',
      '--idle',
      '1',
    ])
    assert.equal(run.code, 0, run.stderr)
    const tried = (await readFile(attempts, 'utf8')).trim().split('\n').sort()
    assert.deepEqual(tried, [...Array(3).fill('with-id'), ...Array(3).fill('without-id')])
    assert.match(run.stderr, /message 'm-1'.*rejected after 3 attempts/)
    assert.equal(await queueCount(queue), 0)
    const dead = await drainQueue(dlq)
    assert.deepEqual(dead.map((m) => m.content.toString()).sort(), ['with-id', 'without-id'])
  })

  test('Ctrl-C: the running command finishes and its message is acked; exit 0', async () => {
    const queue = await newQueue('cli-exec-ctrl-c')
    await publishRaw(queue, ['job'])
    const started = join(scratch, 'grace-started')
    const finished = join(scratch, 'grace-finished')
    const child = spawnCli(
      ['consume', queue, '--exec', `cat >/dev/null; touch '${started}'; sleep 1; touch '${finished}'`],
      { group: true },
    )
    children.push(child)
    await child.waitUntil(() => existsSync(started), 20_000, 'the command started')
    ctrlC(child)
    const run = await child.exited
    assert.equal(run.code, 0, run.stderr)
    assert.ok(existsSync(finished), 'the command ran to its end')
    assert.match(run.stderr, /: 1 acked/)
    assert.equal(await queueCount(queue), 0)
  })

  test('Ctrl-C twice: the running command is ended, its message requeued; exit 130', async () => {
    const queue = await newQueue('cli-exec-ctrl-c-twice')
    await publishRaw(queue, ['job'])
    const started = join(scratch, 'twice-started')
    const finished = join(scratch, 'twice-finished')
    const child = spawnCli(
      ['consume', queue, '--exec', `cat >/dev/null; touch '${started}'; sleep 2; touch '${finished}'`],
      { group: true },
    )
    children.push(child)
    await child.waitUntil(() => existsSync(started), 20_000, 'the command started')
    ctrlC(child)
    await child.waitUntil(() => /Ctrl-C again/.test(child.stderr()), 5_000, 'the first Ctrl-C noticed')
    ctrlC(child)
    const run = await child.exited
    assert.equal(run.code, 130, run.stderr)
    await sleep(2_500)
    assert.ok(!existsSync(finished), 'the command was ended, not left running')
    assert.equal(await queueCount(queue), 1)
  })
})
