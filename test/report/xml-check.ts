/**
 * A small XML well-formedness checker for the report tests (no XML parser is a dependency):
 * one root element, tags nest and close, attributes are quoted and unique, text and attribute
 * values contain no raw '<' and only known or numeric entities. Returns the problems found.
 */
const ENTITY = /^&(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/;
const NAME = /^[A-Za-z_:][-A-Za-z0-9_:.]*$/;

function checkText(text: string, where: string, problems: string[]): void {
  for (let i = text.indexOf('&'); i >= 0; i = text.indexOf('&', i + 1)) {
    if (!ENTITY.test(text.slice(i))) problems.push(`${where}: bare '&' at ${JSON.stringify(text.slice(i, i + 12))}`);
  }
  if (text.includes('<')) problems.push(`${where}: raw '<'`);
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/.test(text)) problems.push(`${where}: control character`);
}

export function xmlProblems(xml: string): string[] {
  const problems: string[] = [];
  let body = xml;
  const decl = /^<\?xml[^?]*\?>\s*/.exec(body);
  if (decl) body = body.slice(decl[0].length);
  const stack: string[] = [];
  let roots = 0;
  let i = 0;
  for (let guard = 0; i < body.length && guard < 1_000_000; guard++) {
    const lt = body.indexOf('<', i);
    const text = lt < 0 ? body.slice(i) : body.slice(i, lt);
    if (text.trim() !== '') {
      if (stack.length === 0) problems.push(`text outside the root: ${JSON.stringify(text.slice(0, 20))}`);
      checkText(text, `text in <${stack[stack.length - 1] ?? ''}>`, problems);
    }
    if (lt < 0) break;
    const gt = body.indexOf('>', lt);
    if (gt < 0) {
      problems.push('unterminated tag');
      break;
    }
    const tag = body.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      const open = stack.pop();
      if (open !== name) problems.push(`</${name}> closes <${open ?? 'nothing'}>`);
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const inner = selfClosing ? tag.slice(0, -1) : tag;
    const m = /^([^\s/]+)([\s\S]*)$/.exec(inner);
    const name = m?.[1] ?? '';
    if (!NAME.test(name)) problems.push(`bad tag name ${JSON.stringify(name)}`);
    let attrs = (m?.[2] ?? '').trim();
    const seen = new Set<string>();
    for (let g = 0; attrs.length > 0 && g < 1000; g++) {
      const a = /^([^\s=]+)\s*=\s*("([^"]*)"|'([^']*)')\s*/.exec(attrs);
      if (!a) {
        problems.push(`<${name}>: bad attribute syntax at ${JSON.stringify(attrs.slice(0, 20))}`);
        break;
      }
      const an = a[1] ?? '';
      if (!NAME.test(an)) problems.push(`<${name}>: bad attribute name ${an}`);
      if (seen.has(an)) problems.push(`<${name}>: duplicate attribute ${an}`);
      seen.add(an);
      checkText(a[3] ?? a[4] ?? '', `<${name} ${an}>`, problems);
      attrs = attrs.slice(a[0].length);
    }
    if (stack.length === 0) roots++;
    if (!selfClosing) stack.push(name);
  }
  if (stack.length > 0) problems.push(`unclosed: ${stack.join(' > ')}`);
  if (roots !== 1) problems.push(`expected one root element, found ${roots}`);
  return problems;
}

/** Undo the five XML entities (enough for our own output, which uses no numeric ones). */
export function unescapeXml(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}
