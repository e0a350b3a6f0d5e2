// The resolve hook of no-otel-api.mjs (runs in Node's hooks thread): `@opentelemetry/*` cannot be
// found, whoever imports it; everything else resolves as usual.
export async function resolve(specifier, context, nextResolve) {
  if (specifier.startsWith('@opentelemetry/')) {
    const err = new Error(`Cannot find package '${specifier}' (hidden from this process by the benchmark)`)
    err.code = 'ERR_MODULE_NOT_FOUND'
    throw err
  }
  return nextResolve(specifier, context)
}
