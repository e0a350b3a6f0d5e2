// A pool's placement (least-loaded connection, ties to the first) and where its connections start
// among several urls (one after the other, so a pool of 3 over 3 nodes is one per node), without a
// broker: nothing here connects.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { inspect } from 'node:util'
import { ConnectionPool } from 'lapinmq'
import { leastLoaded, startIndices } from '../../src/connection/pool.ts'

const urls = [
  'amqp://app:s3cret-pw@rabbit-1:5672/prod',
  'amqp://app:s3cret-pw@rabbit-2:5672/prod',
  'amqp://app:s3cret-pw@rabbit-3:5672/prod',
]
const shown = urls.map((u) => u.replace('s3cret-pw', '***'))

describe('leastLoaded', () => {
  test('the smallest load; on a tie, the lowest index', () => {
    assert.equal(leastLoaded([0]), 0)
    assert.equal(leastLoaded([0, 0, 0]), 0)
    assert.equal(leastLoaded([1, 0, 0]), 1)
    assert.equal(leastLoaded([1, 1, 0]), 2)
    assert.equal(leastLoaded([2, 1, 1]), 1)
    assert.equal(leastLoaded([3, 5, 2, 2]), 2)
  })
})

describe('startIndices', () => {
  test('one after the other from the start, modulo the urls', () => {
    assert.deepEqual(startIndices(3, 3, 0), [0, 1, 2])
    assert.deepEqual(startIndices(3, 3, 2), [2, 0, 1])
    assert.deepEqual(startIndices(4, 3, 1), [1, 2, 0, 1])
    assert.deepEqual(startIndices(2, 1, 0), [0, 0])
  })
})

describe('ConnectionPool', () => {
  test('size: an integer from 1 to 1000, else RangeError naming size; 2 by default', () => {
    for (const size of [0, -1, 1.5, 1001, Number.NaN, '2' as unknown as number]) {
      assert.throws(() => new ConnectionPool({ size }), { name: 'RangeError', message: /^size must be/ })
    }
    assert.equal(new ConnectionPool().size, 2)
    assert.equal(new ConnectionPool({ size: 1 }).connections.length, 1)
  })

  test('a pool of 3 over 3 urls starts one connection at each url, whatever the random start', () => {
    const starts = new Set<string>()
    for (let i = 0; i < 60; i++) {
      const pool = new ConnectionPool({ size: 3, urls })
      const at = pool.connections.map((c) => c.url)
      assert.deepEqual([...at].sort(), shown)
      starts.add(at[0] as string)
    }
    // The start is random, so a fleet of pools does not all put connection #0 on the first node.
    assert.equal(starts.size, 3)
  })

  test("urlOrder 'given': connection i starts at url i; a pool larger than the urls wraps around", () => {
    const pool = new ConnectionPool({ size: 4, urls, urlOrder: 'given' })
    assert.deepEqual(
      pool.connections.map((c) => c.url),
      [shown[0], shown[1], shown[2], shown[0]],
    )
  })

  test('connections are named <name>#<i>, lapinmq by default', () => {
    assert.deepEqual(
      new ConnectionPool({ size: 2 }).connections.map((c) => c.name),
      ['lapinmq#0', 'lapinmq#1'],
    )
    const pool = new ConnectionPool({ size: 3, name: 'billing' })
    assert.equal(pool.name, 'billing')
    assert.deepEqual(
      pool.connections.map((c) => c.name),
      ['billing#0', 'billing#1', 'billing#2'],
    )
  })

  test('each placement goes to the least-loaded connection; a release frees its place, once', () => {
    const pool = new ConnectionPool({ size: 3 })
    const [a, b, c] = pool.connections
    const placed = Array.from({ length: 7 }, () => pool.place())
    assert.deepEqual(
      placed.map((p) => p.connection),
      [a, b, c, a, b, c, a],
    )
    assert.deepEqual(pool.loads, [3, 2, 2])
    // Freed on b: the next user goes there, not to a (tie-break) nor c.
    void placed[4]?.release()
    void placed[4]?.release()
    assert.deepEqual(pool.loads, [3, 1, 2])
    assert.equal(pool.place().connection, b)
    assert.deepEqual(pool.loads, [3, 2, 2])
  })

  test('a closed pool places nobody: its loads stay as they were', async () => {
    const pool = new ConnectionPool({ size: 2 })
    await pool.close()
    await pool.close()
    const placement = pool.place()
    assert.equal(placement.connection.state, 'closed')
    assert.deepEqual(pool.loads, [0, 0])
  })

  test('util.inspect and JSON.stringify show urls redacted, names, states and loads, never the password', () => {
    const pool = new ConnectionPool({ size: 3, urls, urlOrder: 'given', name: 'billing' })
    pool.place()
    const text = inspect(pool)
    const json = JSON.stringify(pool)
    for (const out of [text, json, inspect({ nested: pool }, { depth: 5 })]) {
      assert.ok(!out.includes('s3cret-pw'), out)
      for (const url of shown) assert.ok(out.includes(url), out)
    }
    assert.deepEqual(JSON.parse(json), {
      name: 'billing',
      size: 3,
      connections: shown.map((url, i) => ({
        url,
        name: `billing#${i}`,
        state: 'idle',
        load: i === 0 ? 1 : 0,
      })),
    })
  })
})
