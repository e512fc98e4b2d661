/**
 * `ota-sim demo` (what `npm start` runs until scenarios exist): sign two firmware images with a
 * fixed demo key, program an nrf52840 flash with 1.0.0 confirmed and 1.1.0 as a pending test
 * upgrade, show the flash, run the bootloader model with a power cut in the middle of the swap,
 * boot again, and show that the device came back on the verified new image.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { boot } from '../boot/boot.js';
import { programSlot } from '../boot/program.js';
import { Flash } from '../flash/flash.js';
import { PowerCut } from '../flash/errors.js';
import { loadBoard } from '../flash/board.js';
import { saveFlash } from '../flash/persist.js';
import { createTrustStore, ed25519KeyPemFromSeed, parseSigningKeyPem, publicKeyOf, publicKeyToPem, signImage } from '../image/index.js';
import { Prng } from '../prng.js';
import { describeFlash, formatFlashDescription } from './describe.js';
import { writeOutput } from './files.js';
import { emit } from './output.js';
import type { GlobalArgs } from './output.js';

interface DemoArgs extends GlobalArgs {
  dir: string;
  seed: number;
}

/** A fixed ed25519 key, so the demo's images are the same every run. */
const DEMO_KEY_SEED = new Uint8Array(32).fill(0x5e);

export const demoCommand: CommandModule<GlobalArgs, DemoArgs> = {
  command: 'demo',
  describe: 'sign two images, program an nrf52840 flash, cut power mid-swap and boot again',
  builder: (y) =>
    y
      .option('dir', { type: 'string', default: 'sim-flash/devices/demo', describe: 'where the key, images and flash file go' })
      .option('seed', { type: 'number', default: 1, describe: 'seed of the power cut point' }) as Argv<DemoArgs>,
  handler: (argv) => {
    const out: string[] = [];
    const say = (line: string): void => {
      out.push(line);
    };
    mkdirSync(argv.dir, { recursive: true });
    const keyPem = ed25519KeyPemFromSeed(DEMO_KEY_SEED);
    const key = parseSigningKeyPem(keyPem, 'demo key');
    writeOutput(join(argv.dir, 'demo-key.pem'), keyPem, 0o600);
    writeOutput(join(argv.dir, 'demo-pub.pem'), publicKeyToPem(publicKeyOf(key)));

    const board = loadBoard('nrf52840');
    const slotSize = board.partitions.slot0.size;
    const images = (['1.0.0', '1.1.0'] as const).map((version, i) => {
      const signed = signImage(new Prng(100 + i).bytes(96 * 1024 + i * 1000), {
        key,
        headerSize_bytes: 0x200,
        padHeader: true,
        slotSize_bytes: slotSize,
        align: 4,
        version,
        customTlvs: [{ type: 0xa1, value: new TextEncoder().encode(board.name) }],
      });
      const file = join(argv.dir, `app-${version}.signed.bin`);
      writeOutput(file, signed);
      say(`signed ${file}: version ${version}, ${signed.length} bytes, ed25519`);
      return signed;
    });

    const flashFile = join(argv.dir, 'nrf52840.bin');
    const strategy = 'swap-move';
    const flash = Flash.create(board);
    programSlot(flash, 'slot0', images[0]!, 'confirm', strategy);
    programSlot(flash, 'slot1', images[1]!, 'test', strategy);
    saveFlash(flash, flashFile);
    const trust = createTrustStore([publicKeyOf(key)]);
    say(`\nprogrammed ${flashFile}: 1.0.0 confirmed in slot0, 1.1.0 pending as a test upgrade in slot1\n`);
    say(formatFlashDescription(flashFile, describeFlash(flash, { strategy, trust })));

    // Measure the swap once on a copy, then cut power at a seeded op inside it on the real one.
    const probe = flash.clone();
    const start = probe.opIndex;
    boot(probe, { strategy, trustedKeys: trust.keys });
    const swapOps = probe.opIndex - start;
    const cutAt = start + new Prng(argv.seed).below(swapOps);
    flash.armPowerCut({ atOp: cutAt, kind: 'inside', seed: argv.seed });
    let cut = false;
    try {
      boot(flash, { strategy, trustedKeys: trust.keys });
    } catch (err) {
      if (!(err instanceof PowerCut)) throw err;
      cut = true;
    }
    say(`\nbootloader: the test swap takes ${swapOps} flash ops; power cut ${cut ? 'inside' : 'never reached'} op ${cutAt - start} of them`);
    flash.powerOn();
    saveFlash(flash, flashFile);
    say(formatFlashDescription(flashFile, describeFlash(flash, { strategy, trust }), { brief: true }));
    const result = boot(flash, { strategy, trustedKeys: trust.keys });
    saveFlash(flash, flashFile);
    const booted = result.kind === 'booted' ? `booted ${result.header.version.major}.${result.header.version.minor}.${result.header.version.revision} from slot0${result.resumed ? ' (resumed the interrupted swap)' : ''}` : `NO BOOTABLE IMAGE: ${result.reason}`;
    say(`\npower on again: ${booted}`);
    say(formatFlashDescription(flashFile, describeFlash(flash, { strategy, trust }), { brief: true }));
    say(`\nThe new image runs in test mode: until it confirms itself (image_ok), the next boot reverts to 1.0.0.`);
    say(`Inspect it yourself: npx ota-sim flash inspect ${flashFile} --trust ${join(argv.dir, 'demo-pub.pem')}`);
    emit(argv, out.join('\n'), { dir: argv.dir, flashFile, swapOps, cutAt: cutAt - start, booted: result.kind === 'booted', resumed: result.kind === 'booted' && result.resumed });
  },
};
