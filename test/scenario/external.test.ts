/** A scenario against an external server (`server.url`): the devices update from a server the scenario does not run. */
import { describe, expect, it } from 'vitest';
import { loadScenario } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/runner.js';
import { UpdateServer } from '../../src/server/index.js';
import { ScaledClock } from '../../src/clock.js';
import { base, why } from './helpers.js';

describe('external server', () => {
  it('devices update over DTLS from a server given by URL and PSKs', async () => {
    const psks = [
      { identity: 'ext-a', key: 'secret-a' },
      { identity: 'ext-b', key: 'secret-b' },
    ];
    const server = await UpdateServer.start({
      port: null,
      dtlsPort: 0,
      clock: new ScaledClock(0.01),
      devices: psks.map((p) => ({ ...p, board: 'nrf52840', tags: [] })),
      offerNewest: false,
    });
    try {
      const spec = base('external', { groups: [{ name: 'fleet', count: 2, image: 'v1' }], timeline: undefined });
      spec['server'] = { url: `coaps://127.0.0.1:${server.addresses().dtls!.port}`, psks };
      delete spec['timeline'];
      const loaded = loadScenario(spec);
      // The server offers the scenario's own v2 (signed with the scenario's key): what a QA team does
      // when it points ota-sim at its staging server.
      const v2 = loaded.images.get('v2')!;
      const artifact = await server.model.addArtifact({ package: 'main', bytes: Buffer.from(v2.bytes) });
      await server.model.createRelease({ artifacts: [artifact.id] });
      const run = await runScenario(loaded);
      expect(run.passed, why(run)).toBe(true);
      // Device ids come from the group; the PSK identities are what the server knows them by.
      expect(run.devices.map((d) => [d.id, d.finalVersion, d.confirmed])).toEqual([
        ['fleet-0', '1.1.0+0', true],
        ['fleet-1', '1.1.0+0', true],
      ]);
      // The external server saw each device's success report.
      for (const p of psks) {
        const reports = server.model.reports(p.identity).history.map((h) => h.report);
        expect(reports.some((r) => r !== null && r.s === 3 && r.r === 1)).toBe(true);
      }
    } finally {
      await server.close();
    }
  }, 120_000);
});
