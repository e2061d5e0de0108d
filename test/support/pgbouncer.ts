// Moved to src/sandbox (the sandbox uses it too); the tests keep importing it from here.
export * from '../../src/sandbox/pgbouncer.js';
