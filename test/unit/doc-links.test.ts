// Every relative link in the README and docs/ leads to a file of the repository.
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '../..')
const pages = ['README.md', ...readdirSync(join(root, 'docs')).map((f) => join('docs', f))]

test('relative links in README.md and docs/ resolve', () => {
  const broken: string[] = []
  for (const page of pages) {
    const text = readFileSync(join(root, page), 'utf8')
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (!target || /^[a-z]+:/i.test(target) || target.startsWith('#')) continue
      const path = target.split('#')[0] as string
      if (!existsSync(join(root, dirname(page), path))) broken.push(`${page}: ${target}`)
    }
  }
  assert.deepEqual(broken, [])
})
