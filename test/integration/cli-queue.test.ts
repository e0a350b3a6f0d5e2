// `lapinmq queue`: one queue asked over AMQP (ready messages, consumers; a missing one exits 6 and
// is not created), and every queue of a vhost through the management plugin's HTTP API — here a
// stand-in HTTP server that records what it was asked, since the shared broker runs no plugin.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, describe, test } from 'node:test'
import {
  closeAdmin,
  declareQueue,
  deleteQueue,
  publishRaw,
  queueCount,
  uniqueName,
  waitFor,
} from '../helpers/broker.ts'
import { runCli } from '../helpers/cli.ts'

const queues: string[] = []
after(async () => {
  for (const queue of queues) await deleteQueue(queue)
  await closeAdmin()
})

/** A stand-in management API: answers each request with `reply` and records what was asked. */
async function managementApi(
  reply: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ url: string; requests: IncomingMessage[]; server: Server }> {
  const requests: IncomingMessage[] = []
  const server = createServer((req, res) => {
    requests.push(req)
    reply(req, res)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, requests, server }
}

describe('lapinmq queue', () => {
  test('a named queue: its ready messages and consumers, as text and as JSON', async () => {
    const queue = uniqueName('cli-queue')
    queues.push(queue)
    await declareQueue(queue)
    await publishRaw(queue, ['a', 'b', 'c'])
    await waitFor(async () => (await queueCount(queue)) === 3, 5_000, 'three messages')
    const text = await runCli(['queue', queue])
    assert.equal(text.code, 0, text.stderr)
    assert.equal(text.stdout, `queue '${queue}': 3 ready, 0 consumers\n`)
    const json = await runCli(['queue', queue, '--json'])
    assert.equal(json.code, 0, json.stderr)
    assert.deepEqual(JSON.parse(json.stdout), { name: queue, ready: 3, consumers: 0 })
    assert.equal(await queueCount(queue), 3, 'asking takes nothing')
  })

  test('a missing queue: exit 6 with a hint, and nothing is created', async () => {
    const queue = uniqueName('cli-queue-missing')
    const run = await runCli(['queue', queue])
    assert.equal(run.code, 6, run.stderr)
    assert.match(run.stderr, /NOT_FOUND/)
    assert.match(run.stderr, /check its name/)
    const again = await runCli(['queue', queue])
    assert.equal(again.code, 6, 'still missing: the first ask created nothing')
  })

  test('no name and no management URL: exit 2, saying why AMQP cannot list queues', async () => {
    const run = await runCli(['queue'])
    assert.equal(run.code, 2)
    assert.match(run.stderr, /AMQP cannot list queues.*--management-url/)
  })

  test('every queue through the management API: the vhost escaped, basic auth, sorted rows, JSON', async () => {
    const api = await managementApi((_req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(
        JSON.stringify([
          { name: 'orders', type: 'quorum', messages_ready: 12, messages_unacknowledged: 3, consumers: 2 },
          { name: 'audit', type: 'classic', messages_ready: 0, messages_unacknowledged: 0, consumers: 1 },
        ]),
      )
    })
    try {
      const base = api.url.replace('http://', 'http://ops:s3cret@')
      const run = await runCli(['queue', '--management-url', base, '--vhost', 'prod/eu'])
      assert.equal(run.code, 0, run.stderr)
      assert.equal(
        run.stdout,
        [
          'name    type     ready  unacked  consumers',
          'audit   classic  0      0        1',
          'orders  quorum   12     3        2',
          '',
        ].join('\n'),
      )
      const [request] = api.requests
      assert.equal(request?.url?.split('?')[0], '/api/queues/prod%2Feu')
      assert.equal(request?.headers.authorization, `Basic ${Buffer.from('ops:s3cret').toString('base64')}`)
      const json = await runCli(['queue', '--management-url', base, '--json'])
      assert.equal(json.code, 0, json.stderr)
      assert.equal(api.requests[1]?.url?.split('?')[0], '/api/queues/%2F', 'the default vhost is /')
      assert.deepEqual(JSON.parse(json.stdout)[1], {
        name: 'orders',
        type: 'quorum',
        ready: 12,
        unacked: 3,
        consumers: 2,
      })
    } finally {
      api.server.close()
    }
  })

  test('the management API refuses the login: exit 7, the password never printed; no JSON or none answers: exit 8; a bad URL: exit 2', async () => {
    const api = await managementApi((_req, res) => {
      res.statusCode = 401
      res.end()
    })
    try {
      const run = await runCli([
        'queue',
        '--management-url',
        api.url.replace('http://', 'http://ops:s3cret@'),
      ])
      assert.equal(run.code, 7, run.stderr)
      assert.match(run.stderr, /refused the login/)
      assert.doesNotMatch(run.stdout + run.stderr, /s3cret/)
    } finally {
      api.server.close()
    }
    const html = await managementApi((_req, res) => {
      res.end('<html>a proxy page, not the API</html>')
    })
    try {
      const run = await runCli(['queue', '--management-url', html.url])
      assert.equal(run.code, 8, run.stderr)
      assert.match(run.stderr, /did not answer with JSON/)
    } finally {
      html.server.close()
    }
    const badEscape = await runCli(['queue', '--management-url', 'http://ops%zz:pw@127.0.0.1:1'])
    assert.equal(badEscape.code, 2, badEscape.stderr)
    assert.match(badEscape.stderr, /bad %-escape/)
    const nobody = await runCli(['queue', '--management-url', api.url])
    assert.equal(nobody.code, 8, nobody.stderr)
    assert.match(nobody.stderr, /did not answer/)
  })
})
