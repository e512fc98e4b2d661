/**
 * Fenced code blocks of a markdown file, for the doc-test: language, flags (```sh no-run),
 * attributes (```yaml file=path/in/the/folder.yaml) and the line of the first content line.
 */
import { readFileSync } from 'node:fs';

export interface Block {
  file: string;
  /** 1-based line of the block's first content line in `file`. */
  line: number;
  lang: string;
  flags: string[];
  attrs: Record<string, string>;
  text: string;
}

const MAX_BLOCKS = 500;

export function extractBlocks(file: string, markdown: string = readFileSync(file, 'utf8')): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const open = /^( {0,3})(`{3,}|~{3,})\s*(.*)$/.exec(lines[i] ?? '');
    if (!open) {
      i++;
      continue;
    }
    const fence = open[2] ?? '```';
    const words = (open[3] ?? '').trim().split(/\s+/).filter((w) => w.length > 0);
    const lang = (words[0] ?? '').toLowerCase();
    const flags: string[] = [];
    const attrs: Record<string, string> = {};
    for (const w of words.slice(1)) {
      const eq = w.indexOf('=');
      if (eq > 0) attrs[w.slice(0, eq)] = w.slice(eq + 1);
      else flags.push(w);
    }
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !(lines[j] ?? '').trimStart().startsWith(fence)) body.push(lines[j++] ?? '');
    if (j >= lines.length) throw new Error(`${file}:${i + 1}: fenced block never closed`);
    blocks.push({ file, line: i + 2, lang, flags, attrs, text: body.join('\n') + '\n' });
    if (blocks.length > MAX_BLOCKS) throw new Error(`${file}: more than ${MAX_BLOCKS} fenced blocks`);
    i = j + 1;
  }
  return blocks;
}
