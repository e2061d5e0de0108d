/**
 * What reverse replication and the switch-point snapshots add inside the freeze, against the same run's
 * baseline: the fence alone (today's in-freeze work besides the sequences) versus the fence, then the
 * reverse slot on the target and the snapshot export on both sides at once. Everything that belongs
 * before the freeze (prepare(): checks, the publication, held connections) and after it (attach, drop)
 * runs outside the timed part of each iteration; the timed parts are printed as median and p90.
 */
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { PgReverseReplication } from '../src/adapters/replication/reverse-replication.js';
import { SnapshotSwitchPointVerifier } from '../src/adapters/replication/switch-point-verifier.js';
import { ReplicationFence } from '../src/adapters/source/fence.js';
import { createLogger } from '../src/log.js';
import { Secret } from '../src/secret.js';
import { DATABASE, startBidirectionalPair, type BidirectionalPair } from '../test/support/bidirectional-pair.js';

const logger = createLogger('silent');
let pair: BidirectionalPair;
const timings: Record<string, number[]> = { 'fence alone': [], 'fence + reverse switch point + snapshots': [] };
let iteration = 0;

beforeAll(async () => {
  pair = await startBidirectionalPair(async (source) => {
    await source.query("INSERT INTO items (note) SELECT 'row ' || g FROM generate_series(1, 1000) g");
  });
});

afterAll(async () => {
  await pair?.stop();
  const at = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;
  for (const [name, xs] of Object.entries(timings)) {
    process.stdout.write(`in-freeze ${name}: median ${at(xs, 0.5).toFixed(1)} ms, p90 ${at(xs, 0.9).toFixed(1)} ms (${xs.length} runs)\n`);
  }
});

const fence = () => new ReplicationFence({ source: pair.sourcePool, target: pair.targetPool, slot: 'auto', logger });

describe('in-freeze cost of reverse replication and the switch-point snapshots', () => {
  bench(
    'fence alone (baseline)',
    async () => {
      const f = fence();
      await f.prepare();
      const started = performance.now();
      await f.prove(30_000);
      timings['fence alone']?.push(performance.now() - started);
    },
    { iterations: 20, time: 0 },
  );

  bench(
    'fence, then reverse switch point and snapshots at once',
    async () => {
      iteration += 1;
      const t = pair.target;
      const reverse = new PgReverseReplication({
        source: pair.sourcePool,
        target: pair.targetPool,
        targetConnection: { host: t.host, port: t.port, database: DATABASE, user: t.user, password: new Secret(t.password), sslmode: 'disable' },
        sessionId: `bench${iteration}`,
        sequenceMargin: 100,
        logger,
      });
      const verifier = new SnapshotSwitchPointVerifier({ source: pair.sourcePool, target: pair.targetPool, logger });
      const f = fence();
      try {
        await Promise.all([reverse.prepare(), verifier.prepare(), f.prepare()]);
        const started = performance.now();
        await f.prove(30_000);
        await Promise.all([reverse.establish(), verifier.exportSnapshots()]);
        timings['fence + reverse switch point + snapshots']?.push(performance.now() - started);
      } finally {
        await verifier.close();
        await reverse.drop();
      }
    },
    { iterations: 20, time: 0 },
  );
});
