// Queues that are not there, and exit codes that must match the README: a typo'd queue name is
// reported (exit 6) and never created; consume and pipe take an existing queue as it was declared
// (--declare creates one); pipe checks its target before it moves anything; publishing lines to a
// missing queue stops at the first return; an unknown vhost is a refusal (exit 7).
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
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
import { type CliChild, killCli, runCli, runCliWithin, spawnCli } from '../helpers/cli.ts'

const queues: string[] = []
const children: CliChild[] = []

async function newQueue(prefix: string, args?: Record<string, unknown>): Promise<string> {
  const queue = uniqueName(prefix)
  queues.push(queue)
  await declareQueue(queue, { durable: true, ...(args ? { arguments: args } : {}) })
  return queue
}

/** A name no test declares; remembered so that a run that wrongly creates it is cleaned up. */
function missingQueue(prefix: string): string {
  const queue = uniqueName(prefix)
  queues.push(queue)
  return queue
}

const exists = (queue: string): Promise<boolean> =>
  queueCount(queue).then(
    () => true,
    () => false,
  )

describe('missing queues and exit codes', () => {
  after(async () => {
    for (const child of children) killCli(child)
    for (const queue of queues) await deleteQueue(queue)
    await closeAdmin()
  })

  test('consume of a queue that does not exist: exit 6, a hint, and no queue created', async () => {
    const typo = missingQueue('cli-consume-typo')
    const run = await runCliWithin(20_000, ['consume', typo, '--idle', '1'])
    assert.equal(run.code, 6, run.stderr)
    assert.match(run.stderr, /NOT_FOUND/)
    assert.match(run.stderr, /--declare/)
    assert.equal(await exists(typo), false, 'the typo did not become a queue')
  })

  test('queue <name> of a queue that does not exist: exit 6, and no hint of a --declare it does not have', async () => {
    const typo = missingQueue('cli-queue-typo')
    const run = await runCliWithin(20_000, ['queue', typo])
    assert.equal(run.code, 6, run.stderr)
    assert.match(run.stderr, /check its name/)
    assert.doesNotMatch(run.stderr, /--declare/)
  })

  test('pipe from a queue that does not exist: exit 6, no queue created', async () => {
    const typo = missingQueue('cli-pipe-typo')
    const to = await newQueue('cli-pipe-typo-to')
    const run = await runCliWithin(20_000, ['pipe', typo, to])
    assert.equal(run.code, 6, run.stderr)
    assert.equal(await exists(typo), false, 'the typo did not become a queue')
  })

  test('consume --declare creates the queue; --queue-arg goes only with --declare', async () => {
    const queue = missingQueue('cli-consume-declare')
    const run = await runCliWithin(20_000, ['consume', queue, '--declare', '--idle', '1'])
    assert.equal(run.code, 0, run.stderr)
    assert.equal(await exists(queue), true)
    const usage = await runCli(['consume', queue, '--queue-arg', 'x-max-length=10', '--idle', '1'])
    assert.equal(usage.code, 2, usage.stderr)
    assert.match(usage.stderr, /--queue-arg .*--declare/)
  })

  test('a queue declared with arguments is consumed as it is; --declare needs the same arguments', async () => {
    const queue = await newQueue('cli-consume-quorum', { 'x-queue-type': 'quorum' })
    await publishRaw(queue, ['q-1', 'q-2'])
    const run = await runCliWithin(20_000, ['consume', queue, '--count', '1'])
    assert.equal(run.code, 0, run.stderr)
    assert.equal(run.stdout, 'q-1\n')
    const refused = await runCliWithin(20_000, ['consume', queue, '--declare', '--count', '1'])
    assert.equal(refused.code, 9, refused.stderr)
    assert.match(refused.stderr, /^lapinmq: PRECONDITION_FAILED: .*inequivalent arg 'x-queue-type'/m)
    assert.match(refused.stderr, /--queue-arg/)
    const declared = await runCliWithin(20_000, [
      'consume',
      queue,
      '--declare',
      '--queue-arg',
      'x-queue-type=quorum',
      '--count',
      '1',
    ])
    assert.equal(declared.code, 0, declared.stderr)
    assert.equal(declared.stdout, 'q-2\n')
  })

  test('a queue deleted under a running consume: exit 6, and it does not come back', async () => {
    const queue = await newQueue('cli-consume-deleted')
    const child = spawnCli(['consume', queue])
    children.push(child)
    await child.waitUntil(() => /consuming queue/.test(child.stderr()), 20_000, 'consuming')
    // Consuming once the broker lists a consumer on the queue.
    await new Promise((r) => setTimeout(r, 300))
    await deleteQueue(queue)
    const run = await Promise.race([
      child.exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('still running')), 15_000)),
    ])
    assert.equal(run.code, 6, run.stderr)
    assert.equal(await exists(queue), false, 'the deleted queue was not declared again')
  })

  test('pipe to a queue that does not exist: exit 6 before taking a single message', async () => {
    const from = await newQueue('cli-pipe-nowhere')
    await publishRaw(from, ['a', 'b', 'c'])
    const to = missingQueue('cli-pipe-missing')
    const run = await runCliWithin(20_000, ['pipe', from, to])
    assert.equal(run.code, 6, run.stderr)
    assert.match(run.stderr, new RegExp(`NOT_FOUND: .*'${to}'`))
    const left = await drainQueue(from)
    assert.deepEqual(
      left.map((m) => [m.content.toString(), m.fields.redelivered]),
      [
        ['a', false],
        ['b', false],
        ['c', false],
      ],
      'every message still in <from>, never delivered',
    )
    assert.equal(await exists(to), false)
  })

  test('publish --lines to a queue that does not exist stops at the first return: exit 3', async () => {
    const queue = missingQueue('cli-publish-missing-lines')
    const input = `${Array.from({ length: 50_000 }, (_, i) => `line ${i}`).join('\n')}\n`
    const run = await runCliWithin(30_000, ['publish', queue, '--lines', '--max-in-flight', '100'], { input })
    assert.equal(run.code, 3, run.stderr)
    const sent = Number(/published ([\d,]+) messages/.exec(run.stderr)?.[1]?.replaceAll(',', ''))
    assert.ok(sent >= 1 && sent <= 300, `stopped soon after the first return, sent ${sent}`)
    assert.match(run.stderr, new RegExp(`no queue '${queue}' exists`))
  })

  test('an unknown vhost: exit 7, as for any refused login', async () => {
    const url = new URL(brokerUrl)
    url.pathname = `/${uniqueName('no-such-vhost')}`
    const run = await runCliWithin(20_000, ['publish', 'any', 'x', '--url', url.href])
    assert.equal(run.code, 7, run.stderr)
  })
})
