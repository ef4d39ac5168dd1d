/**
 * Runs before every test file. The AWS SDK warns once per process that its releases after January 2027
 * need Node 22; we pin ours, so the notice is noise in every worker. AWS documents this variable to turn
 * it off, and child processes (the CLI, handlers) inherit it.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
