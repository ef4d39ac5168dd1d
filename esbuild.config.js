// How the Lambda handlers are bundled: used by serverless-esbuild (serverless.yml custom.esbuild.config)
// and by `npm run bench`, which reports the bundle's size and module init time.
// mainFields prefers the SDK's ES modules, which esbuild can tree-shake (~350 KB instead of ~510 KB).
module.exports = () => ({
  bundle: true,
  minify: true,
  sourcemap: true,
  platform: 'node',
  target: 'node22',
  mainFields: ['module', 'main'],
  // The SDK is bundled, not taken from the runtime, so the deployed code is the tested code.
  external: [],
  exclude: [],
});
