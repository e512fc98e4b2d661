/**
 * `ota-sim image keygen|getpub|sign|verify|inspect`: MCUboot images with imgtool's option names,
 * so build scripts written for `imgtool sign` carry over. All the work is in src/image; this file
 * reads and writes files and maps flags to options.
 */
import { createHash } from 'node:crypto';
import type { Argv, CommandModule } from 'yargs';
import { CheckError, InputError } from '../errors.js';
import {
  ImageError,
  KEY_TYPES,
  TLV,
  createTrustStore,
  customTlvFromArgs,
  decodeBehaviour,
  decodeBoard,
  flagNames,
  generateKey,
  parseImage,
  parseImgtoolInt,
  parseKeyPem,
  parseSigningKeyPem,
  parseVersion,
  privateKeyToPem,
  publicKeyOf,
  publicKeyToPem,
  signImage,
  tlvName,
  verifyImage,
} from '../image/index.js';
import type { AnyKey, KeyType, MaxAlign, PublicKeyFormat, SignOptions, TlvInput, WriteAlign } from '../image/index.js';
import { readInput, writeOutput } from './files.js';
import { emit, parseIntArg } from './output.js';
import type { GlobalArgs } from './output.js';

/** Run `fn`, prefixing an ImageError's message with the file it is about. */
function about<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ImageError && !err.message.startsWith(path)) throw new ImageError(err.code, `${path}: ${err.message}`);
    throw err;
  }
}

function loadKey(path: string): AnyKey {
  return parseKeyPem(readInput(path, 'key file'), path);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** Behaviour and board TLVs are ours: refuse to sign values the device could not read. */
function checkVendorTlv(tlv: TlvInput): void {
  if (tlv.type === TLV.BEHAVIOUR) decodeBehaviour(tlv.value);
  if (tlv.type === TLV.BOARD) decodeBoard(tlv.value);
}

function pairs(values: readonly string[]): TlvInput[] {
  if (values.length % 2 !== 0) throw new InputError('BAD_ARGUMENT', '--custom-tlv: expected TAG VALUE pairs');
  const out: TlvInput[] = [];
  for (let i = 0; i < values.length; i += 2) {
    const tlv = customTlvFromArgs(values[i]!, values[i + 1]!);
    checkVendorTlv(tlv);
    out.push(tlv);
  }
  return out;
}

const keygen = (y: Argv<GlobalArgs>) =>
  y
    .option('key', { alias: 'k', type: 'string', demandOption: true, describe: 'where to write the PKCS#8 PEM private key' })
    .option('type', { alias: 't', type: 'string', default: 'ed25519', describe: `key type: ${KEY_TYPES.join(', ')}` });

const getpub = (y: Argv<GlobalArgs>) =>
  y
    .option('key', { alias: 'k', type: 'string', demandOption: true, describe: 'private (or public) PEM key' })
    .option('encoding', { alias: 'e', type: 'string', default: 'pem', describe: 'pem (SPKI PEM) or raw: the bytes imgtool embeds (SPKI DER, PKCS#1 for RSA)' })
    .option('output', { alias: 'o', type: 'string', describe: 'write to this file instead of stdout' });

const sign = (y: Argv<GlobalArgs>) =>
  y
    // imgtool's -v is the image version; yargs' own --version must not take it.
    .version(false)
    .positional('infile', { type: 'string', demandOption: true, describe: 'raw firmware binary' })
    .positional('outfile', { type: 'string', demandOption: true, describe: 'signed image' })
    .option('key', { alias: 'k', type: 'string', describe: 'PEM private key (no key: hash only, as imgtool)' })
    .option('header-size', { alias: 'H', type: 'string', demandOption: true, describe: 'bytes reserved for the header, e.g. 0x200' })
    .option('pad-header', { type: 'boolean', default: false, describe: 'prepend --header-size erased bytes for the header' })
    .option('slot-size', { alias: 'S', type: 'string', demandOption: true, describe: 'slot size in bytes' })
    .option('align', { type: 'string', default: '1', describe: 'flash write alignment: 1, 2, 4, 8, 16 or 32' })
    .option('version', { alias: 'v', type: 'string', demandOption: true, describe: 'image version maj.min.rev+build' })
    .option('security-counter', { alias: 's', type: 'string', describe: 'security counter value, or "auto"' })
    .option('custom-tlv', { type: 'string', array: true, nargs: 2, describe: 'protected TLV: TAG VALUE (0x-prefixed VALUE = hex bytes, else a string); repeatable' })
    .option('pad', { type: 'boolean', default: false, describe: 'pad to the slot size and write the trailer magic' })
    .option('confirm', { type: 'boolean', default: false, describe: 'with padding, mark the image confirmed (implies --pad)' })
    .option('test', { type: 'boolean', default: false, describe: 'with padding, mark the image for a test swap (implies --pad)' })
    .option('erased-val', { alias: 'R', type: 'string', describe: 'value read back from erased flash: 0 or 0xff' })
    .option('max-align', { type: 'string', describe: 'BOOT_MAX_ALIGN: 8, 16 or 32 (default max(8, align))' })
    .option('max-sectors', { alias: 'M', type: 'string', describe: 'sectors the swap status area allows for (default 128)' })
    .option('overwrite-only', { type: 'boolean', default: false, describe: 'overwrite-only trailer' })
    .option('public-key-format', { type: 'string', default: 'hash', describe: 'hash (KEYHASH TLV) or full (PUBKEY TLV)' })
    .option('load-addr', { alias: 'L', type: 'string', describe: 'RAM load address (sets RAM_LOAD)' })
    .option('rom-fixed', { alias: 'F', type: 'string', describe: 'flash address the image is built for (sets ROM_FIXED)' })
    .option('non-bootable', { type: 'boolean', default: false, describe: 'mark the image non-bootable' })
    .option('pad-sig', { type: 'boolean', default: false, describe: 'pad ECDSA signatures to 72 bytes (MCUboot < 1.5)' });

const verify = (y: Argv<GlobalArgs>) =>
  y
    .positional('file', { type: 'string', demandOption: true, describe: 'signed image (or a whole slot)' })
    .option('key', { alias: 'k', type: 'string', array: true, nargs: 1, demandOption: true, describe: 'trusted key, private or public PEM; repeatable' });

const inspect = (y: Argv<GlobalArgs>) => y.positional('file', { type: 'string', demandOption: true, describe: 'image file' });

/** A flag restricted to a few values; checked here rather than by yargs so the error is one line. */
function choice<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  const found = allowed.find((a) => a === value);
  if (found === undefined) throw new InputError('BAD_ARGUMENT', `${flag}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  return found;
}

function optionalInt(name: string, value: string | undefined): number | undefined {
  return value === undefined ? undefined : parseIntArg(name, value);
}

function handleKeygen(argv: GlobalArgs & { key: string; type: string }): void {
  const key = generateKey(choice<KeyType>('--type', argv.type, KEY_TYPES));
  writeOutput(argv.key, privateKeyToPem(key), 0o600);
  emit(argv, `wrote ${key.type} private key to ${argv.key}`, { key: argv.key, type: key.type, keyHash: hex(key.publicKey.keyHash) });
}

function handleGetpub(argv: GlobalArgs & { key: string; encoding: string; output?: string | undefined }): void {
  const encoding = choice('--encoding', argv.encoding, ['pem', 'raw']);
  const pub = publicKeyOf(loadKey(argv.key));
  const pem = publicKeyToPem(pub);
  if (argv.output !== undefined) {
    writeOutput(argv.output, encoding === 'raw' ? pub.publicBytes : pem);
  } else if (encoding === 'raw' && !argv.json) {
    process.stdout.write(pub.publicBytes);
    return;
  }
  const human = argv.output !== undefined ? `wrote ${pub.type} public key to ${argv.output}` : pem;
  emit(argv, human, { type: pub.type, pem, publicBytes: hex(pub.publicBytes), keyHash: hex(pub.keyHash) });
}

interface SignArgv extends GlobalArgs {
  infile: string;
  outfile: string;
  key?: string | undefined;
  headerSize: string;
  padHeader: boolean;
  slotSize: string;
  align: string;
  version: string;
  securityCounter?: string | undefined;
  customTlv?: string[] | undefined;
  pad: boolean;
  confirm: boolean;
  test: boolean;
  erasedVal?: string | undefined;
  maxAlign?: string | undefined;
  maxSectors?: string | undefined;
  overwriteOnly: boolean;
  publicKeyFormat: string;
  loadAddr?: string | undefined;
  romFixed?: string | undefined;
  nonBootable: boolean;
  padSig: boolean;
}

/** imgtool-style sign arguments (as yargs parsed them) to SignOptions; reads the key file. */
export function signOptionsFromArgv(argv: SignArgv): SignOptions {
  const sc = argv.securityCounter;
  return {
    key: argv.key === undefined ? null : parseSigningKeyPem(readInput(argv.key, 'key file'), argv.key),
    headerSize_bytes: parseIntArg('--header-size', argv.headerSize),
    padHeader: argv.padHeader,
    slotSize_bytes: parseIntArg('--slot-size', argv.slotSize),
    align: Number(choice('--align', argv.align, ['1', '2', '4', '8', '16', '32'])) as WriteAlign,
    version: parseVersion(argv.version),
    securityCounter: sc === undefined ? null : sc.toLowerCase() === 'auto' ? 'auto' : parseImgtoolInt('--security-counter', sc),
    customTlvs: pairs(argv.customTlv ?? []),
    pad: argv.pad,
    confirm: argv.confirm,
    test: argv.test,
    erasedValue: argv.erasedVal === undefined || choice('--erased-val', argv.erasedVal, ['0', '0xff']) === '0xff' ? 0xff : 0,
    ...(argv.maxAlign !== undefined ? { maxAlign: Number(choice('--max-align', argv.maxAlign, ['8', '16', '32'])) as MaxAlign } : {}),
    ...(argv.maxSectors !== undefined ? { maxSectors: parseIntArg('--max-sectors', argv.maxSectors) } : {}),
    overwriteOnly: argv.overwriteOnly,
    publicKeyFormat: choice<PublicKeyFormat>('--public-key-format', argv.publicKeyFormat, ['hash', 'full']),
    loadAddr: optionalInt('--load-addr', argv.loadAddr) ?? 0,
    romFixed: optionalInt('--rom-fixed', argv.romFixed) ?? 0,
    nonBootable: argv.nonBootable,
    padSig: argv.padSig,
  };
}

function handleSign(argv: SignArgv): void {
  const options = signOptionsFromArgv(argv);
  const input = readInput(argv.infile, 'input binary');
  const out = about(argv.infile, () => signImage(input, options));
  writeOutput(argv.outfile, out);
  const image = parseImage(out);
  emit(argv, `signed ${argv.infile} -> ${argv.outfile}: version ${image.version}, image ${image.totalSize_bytes} bytes, file ${out.length} bytes`, {
    outfile: argv.outfile,
    version: image.version,
    imageSize: image.header.imageSize_bytes,
    totalSize: image.totalSize_bytes,
    fileSize: out.length,
    keyType: options.key?.type ?? null,
    sha256: hex(image.tlvs.find((t) => t.type === TLV.SHA256)?.value ?? new Uint8Array()),
  });
}

function handleVerify(argv: GlobalArgs & { file: string; key: string[] }): void {
  const trust = createTrustStore(argv.key.map(loadKey));
  const result = about(argv.file, () => verifyImage(readInput(argv.file, 'image'), trust));
  const json = {
    valid: result.valid,
    reason: result.reason,
    version: result.version,
    message: result.message,
    keyType: result.keyType,
    digest: result.digest ? hex(result.digest) : null,
    totalSize: result.totalSize_bytes,
  };
  if (result.valid) {
    emit(argv, `${argv.file}: valid: ${result.message}`, json);
    return;
  }
  if (argv.json) emit(argv, '', json);
  throw new CheckError(result.reason ?? 'INVALID', `${argv.file}: invalid (${result.reason ?? '?'}): ${result.message}`);
}

function preview(value: Uint8Array): string {
  return value.length <= 32 ? hex(value) : `${hex(value.subarray(0, 32))}… (${value.length} bytes)`;
}

function handleInspect(argv: GlobalArgs & { file: string }): void {
  const bytes = readInput(argv.file, 'image');
  const image = about(argv.file, () => parseImage(bytes));
  const h = image.header;
  const digest = new Uint8Array(createHash('sha256').update(image.bytes.subarray(0, image.hashedSize_bytes)).digest());
  const hashTlv = image.tlvs.find((t) => t.type === TLV.SHA256);
  const hashMatches = hashTlv !== undefined && Buffer.from(digest).equals(hashTlv.value);
  const json = {
    file: argv.file,
    fileSize: bytes.length,
    version: image.version,
    headerSize: h.headerSize_bytes,
    imageSize: h.imageSize_bytes,
    protectedTlvSize: h.protectedTlvSize_bytes,
    loadAddr: h.loadAddr,
    flags: h.flags,
    flagNames: flagNames(h.flags),
    totalSize: image.totalSize_bytes,
    securityCounter: image.securityCounter,
    tlvs: image.tlvs.map((t) => ({ type: t.type, name: tlvName(t.type), length: t.value.length, protected: t.protected, value: hex(t.value) })),
    behaviour: image.behaviour,
    board: image.board,
    sha256: hex(digest),
    sha256Tlv: hashTlv ? hex(hashTlv.value) : null,
    hashMatches,
    fileSha256: createHash('sha256').update(bytes).digest('hex'),
  };
  const lines = [
    `file:             ${argv.file} (${bytes.length} bytes; image ${image.totalSize_bytes} bytes)`,
    `version:          ${image.version}`,
    `header:           hdr_size 0x${h.headerSize_bytes.toString(16)}, img_size ${h.imageSize_bytes}, protect_tlv_size ${h.protectedTlvSize_bytes}, load_addr 0x${h.loadAddr.toString(16)}, flags 0x${h.flags.toString(16)}${json.flagNames.length ? ` (${json.flagNames.join(', ')})` : ''}`,
    `security counter: ${image.securityCounter ?? '-'}`,
    'TLVs:',
    ...image.tlvs.map((t) => `  ${t.protected ? 'protected  ' : 'unprotected'} ${tlvName(t.type).padEnd(12)} ${String(t.value.length).padStart(4)}  ${preview(t.value)}`),
    `behaviour:        ${image.behaviour ? JSON.stringify(image.behaviour) : '- (nominal)'}`,
    `board:            ${image.board ?? '-'}`,
    `sha256:           ${json.sha256} (${hashTlv ? (hashMatches ? 'matches the SHA256 TLV' : 'DOES NOT match the SHA256 TLV') : 'no SHA256 TLV'})`,
  ];
  emit(argv, lines.join('\n'), json);
}

export const imageCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'image',
  describe: 'MCUboot images: keygen, getpub, sign, verify, inspect (imgtool-compatible)',
  builder: (y) =>
    y
      .command('keygen', 'generate a key pair (PKCS#8 PEM)', keygen, handleKeygen)
      .command('getpub', 'print the public key (SPKI PEM)', getpub, handleGetpub)
      .command('sign <infile> <outfile>', 'make a signed MCUboot image, byte-compatible with imgtool sign', sign, handleSign)
      .command('verify <file>', 'check the hash and signature of an image (exit 1 if invalid)', verify, handleVerify)
      .command('inspect <file>', 'show header, TLVs, version, behaviour and board', inspect, handleInspect)
      .demandCommand(1, 'name an image command: keygen, getpub, sign, verify, inspect'),
  handler: () => {
    // Subcommands do the work.
  },
};
