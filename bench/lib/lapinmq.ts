// lapinmq as its users run it: the build (tsc output in dist/), not the TypeScript sources through
// tsx, whose transform adds helpers of its own to every module. `npm run bench` builds it first.
export * from '../../dist/index.js'
