// Connections given the same urls (urlOrder 'random', the default) spread over the nodes evenly: a
// process's connections start at the URLs in turn from a random one, so 20 connections over 3
// nodes put 6 or 7 on each (picked independently at random, one node got at most 2 in about 5% of
// runs).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Connection } from 'lapinmq'

const urls = ['amqp://node-a:5672/', 'amqp://node-b:5672/', 'amqp://node-c:5672/']

test("urlOrder 'random': 20 connections over 3 urls put 6 or 7 on each, every time", () => {
  for (let round = 0; round < 20; round++) {
    const counts = new Map<string, number>()
    for (let i = 0; i < 20; i++) {
      const host = new URL(new Connection({ urls }).url).hostname
      counts.set(host, (counts.get(host) ?? 0) + 1)
    }
    const perUrl = urls.map((u) => counts.get(new URL(u).hostname) ?? 0)
    assert.ok(
      perUrl.every((n) => n === 6 || n === 7),
      `round ${round}: connections per url ${perUrl}`,
    )
  }
})

test("urlOrder 'given': every connection starts at the first url", () => {
  for (let i = 0; i < 10; i++) {
    assert.equal(new URL(new Connection({ urls, urlOrder: 'given' }).url).hostname, 'node-a')
  }
})
