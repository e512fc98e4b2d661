/**
 * Scenario files that are wrong in one way each: every error names the file, the path inside it
 * and what was expected, one line per problem; unknown keys (typos) are refused; cross references
 * (images, keys, groups, releases) are checked before anything runs.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { loadScenario } from '../../src/scenario/load.js';
import { loadScenarios } from '../../src/scenario/run.js';

const dir = mkdtempSync(join(tmpdir(), 'ota-sim-schema-'));
const GOOD = `name: ok
description: a question
board: nrf52840
strategy: swap-move
images:
  v1: { version: 1.0.0 }
  v2: { version: 1.1.0 }
groups:
  - { name: fleet, count: 1, image: v1 }
timeline:
  - { at_ms: 0, release: { id: r1, images: [v2] } }
expect:
  groups:
    fleet: { version: 1.1.0 }
`;

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function errorOf(path: string): InputError {
  try {
    loadScenario(path);
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error(`${path} loaded without an error`);
}

describe('scenario schema errors', () => {
  it('a good file loads, with its images built and signed in memory', () => {
    const s = loadScenario(write('good.yaml', GOOD));
    expect(s.spec.name).toBe('ok');
    expect(s.images.get('v2')?.version).toBe('1.1.0+0');
    expect(s.trusted).toHaveLength(1);
  });

  const cases: [string, string, RegExp][] = [
    ['not a whole number', GOOD + 'faults:\n  - { kind: power-cut-at-block, atBlock: ten }\n', /bad-1\.yaml: faults\[0\]\.atBlock: expected a whole number ≥ 0, got "ten"/],
    ['negative op index', GOOD + 'faults:\n  - { kind: power-cut, atOp: -3 }\n', /faults\[0\]\.atOp: expected a whole number ≥ 0, got -3/],
    ['unknown fault kind', GOOD + 'faults:\n  - { kind: meteor }\n', /faults\[0\]\.kind: expected kind: power-cut, .*got "meteor"/],
    ['bad strategy', GOOD.replace('strategy: swap-move', 'strategy: swap-sideways'), /strategy: expected swap-move, swap-scratch or overwrite-only, got "swap-sideways"/],
    ['missing field', GOOD.replace('board: nrf52840\n', ''), /board: expected a name.*got nothing \(the field is required\)/],
    ['probability above 1', GOOD + 'faults:\n  - { kind: network, loss: 1.5 }\n', /faults\[0\]\.loss: expected a probability 0\.\.1, got 1\.5/],
    ['bad version', GOOD.replace('v2: { version: 1.1.0 }', 'v2: { version: latest }'), /images\.v2\.version: expected a version like "1\.2\.3"/],
  ];
  for (const [i, [what, text, re]] of cases.entries()) {
    it(`${what}: names the file, the path and what was expected`, () => {
      const e = errorOf(write(`bad-${i + 1}.yaml`, text));
      expect(e.message).toMatch(re);
      expect(e.exitCode).toBe(2);
      for (const line of e.message.split('\n')) expect(line).toMatch(/^.*bad-\d+\.yaml: /);
    });
  }

  it('unknown keys are refused, with a hint for a typo', () => {
    const e = errorOf(write('typo.yaml', GOOD.replace('board: nrf52840', 'board: nrf52840\nwallLimt_s: 5')));
    expect(e.message).toMatch(/typo\.yaml: wallLimt_s: unknown key "wallLimt_s" \(did you mean "wallLimit_s"\?\)/);
    const nested = errorOf(write('typo2.yaml', GOOD.replace('{ name: fleet, count: 1, image: v1 }', '{ name: fleet, count: 1, image: v1, agent: { windw: 4 } }')));
    expect(nested.message).toMatch(/groups\[0\]\.agent\.windw: unknown key "windw"/);
  });

  it('cross references: an unknown image, group or release is named with what exists', () => {
    expect(errorOf(write('xref1.yaml', GOOD.replace('images: [v2]', 'images: [v3]'))).message).toMatch(/timeline\[0\]\.release\.images\[0\]: expected an image name from images \(v1, v2\), got "v3"/);
    expect(errorOf(write('xref2.yaml', GOOD + 'faults:\n  - { kind: power-cut, atOp: 3, devices: [flet] }\n')).message).toMatch(/faults\[0\]\.devices\[0\]: expected a group name \(fleet\) or a device id/);
    expect(errorOf(write('xref3.yaml', GOOD.replace('fleet: { version: 1.1.0 }', 'other: { version: 1.1.0 }'))).message).toMatch(/expect\.groups\.other: expected a group name/);
    expect(errorOf(write('xref4.yaml', GOOD.replace('timeline:\n', 'timeline:\n  - { at_ms: 5, rollout: { release: nope, percent: 5 } }\n'))).message).toMatch(/timeline\[0\]\.rollout\.release: expected a release created earlier/);
  });

  it('not YAML, a missing file and a board that does not support the strategy are input errors', () => {
    expect(errorOf(write('broken.yaml', 'name: [unclosed')).message).toMatch(/broken\.yaml: not valid YAML/);
    expect(errorOf(join(dir, 'absent.yaml')).message).toMatch(/absent\.yaml: cannot read/);
    expect(errorOf(write('strat.yaml', GOOD.replace('board: nrf52840', 'board: stm32f4'))).message).toMatch(/strategy: board stm32f4 supports swap-scratch, overwrite-only, got "swap-move"/);
  });

  it('folders load in name order, --filter keeps matching names, duplicate names are refused', () => {
    const d = mkdtempSync(join(tmpdir(), 'ota-sim-folder-'));
    writeFileSync(join(d, 'b.yaml'), GOOD.replace('name: ok', 'name: second'));
    writeFileSync(join(d, 'a.yml'), GOOD.replace('name: ok', 'name: first'));
    writeFileSync(join(d, 'notes.txt'), 'ignored');
    expect(loadScenarios([d]).map((s) => s.spec.name)).toEqual(['first', 'second']);
    expect(loadScenarios([d], 'SEC').map((s) => s.spec.name)).toEqual(['second']);
    expect(() => loadScenarios([d], 'zzz')).toThrow(/no scenario name contains "zzz"/);
    writeFileSync(join(d, 'c.yaml'), GOOD.replace('name: ok', 'name: first'));
    expect(() => loadScenarios([d])).toThrow(/c\.yaml: name: "first" is already the name of/);
  });
});
