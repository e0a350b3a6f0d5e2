import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Fifo } from '../../src/util/fifo.ts'

test('Fifo keeps order across compaction, unshift and drain', () => {
  const q = new Fifo<number>()
  for (let i = 0; i < 5000; i++) q.push(i)
  for (let i = 0; i < 3000; i++) assert.equal(q.shift(), i)
  assert.equal(q.length, 2000)
  q.unshift(2999)
  assert.equal(q.peek(), 2999)
  assert.equal(q.length, 2001)
  const rest = q.drain()
  assert.equal(rest.length, 2001)
  assert.equal(rest[0], 2999)
  assert.equal(rest.at(-1), 4999)
  assert.equal(q.length, 0)
  assert.equal(q.shift(), undefined)
})
