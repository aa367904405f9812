// A small, strict XML 1.0 well-formedness checker for the tests (no dependency): it parses a document into
// elements and throws on anything a conforming parser would reject that our writer could produce: bad chars,
// unbalanced tags, unescaped "<" or "&", "]]>" in text, unquoted or duplicate attributes, several roots.

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated character data directly inside this element, references resolved. */
  text: string;
}

const NAME = /^[A-Za-z_:][A-Za-z0-9._:-]*/;
const CHAR = /^[\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;

function unescape(s: string, where: string): string {
  return s.replace(/&([^;]*);?/g, (m, ref: string) => {
    if (!m.endsWith(';')) throw new Error(`bare & in ${where}`);
    if (ref === 'amp') return '&';
    if (ref === 'lt') return '<';
    if (ref === 'gt') return '>';
    if (ref === 'quot') return '"';
    if (ref === 'apos') return "'";
    const num = /^#(x[0-9A-Fa-f]+|[0-9]+)$/.exec(ref);
    if (!num) throw new Error(`unknown entity &${ref}; in ${where}`);
    const cp = num[1]!.startsWith('x') ? Number.parseInt(num[1]!.slice(1), 16) : Number.parseInt(num[1]!, 10);
    const ch = String.fromCodePoint(cp);
    if (!CHAR.test(ch)) throw new Error(`reference to a non-XML character in ${where}`);
    return ch;
  });
}

export function parseXml(doc: string): XmlElement {
  if (!CHAR.test(doc)) throw new Error('document contains characters XML 1.0 forbids');
  let pos = 0;
  const decl = /^<\?xml [^?]*\?>\s*/.exec(doc);
  if (decl) pos = decl[0].length;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  while (pos < doc.length) {
    const lt = doc.indexOf('<', pos);
    const text = doc.slice(pos, lt === -1 ? doc.length : lt);
    if (text !== '') {
      if (text.includes(']]>')) throw new Error(']]> in character data');
      if (stack.length === 0) {
        if (text.trim() !== '') throw new Error('text outside the root element');
      } else stack[stack.length - 1]!.text += unescape(text, 'text');
    }
    if (lt === -1) break;
    pos = lt;
    if (doc.startsWith('</', pos)) {
      const m = /^<\/([^\s>]+)\s*>/.exec(doc.slice(pos));
      if (!m) throw new Error(`bad end tag at ${pos}`);
      const open = stack.pop();
      if (!open || open.name !== m[1]) throw new Error(`end tag </${m[1]}> does not match <${open?.name}>`);
      pos += m[0].length;
      continue;
    }
    const name = NAME.exec(doc.slice(pos + 1));
    if (!name) throw new Error(`bad start tag at ${pos}`);
    pos += 1 + name[0].length;
    const el: XmlElement = { name: name[0], attrs: {}, children: [], text: '' };
    for (;;) {
      const ws = /^\s*/.exec(doc.slice(pos))![0];
      pos += ws.length;
      if (doc.startsWith('/>', pos) || doc.startsWith('>', pos)) break;
      if (ws === '') throw new Error(`attributes must be separated by whitespace at ${pos}`);
      const attr = /^([A-Za-z_:][A-Za-z0-9._:-]*)\s*=\s*("([^"<]*)"|'([^'<]*)')/.exec(doc.slice(pos));
      if (!attr) throw new Error(`bad attribute at ${pos}`);
      if (attr[1]! in el.attrs) throw new Error(`duplicate attribute ${attr[1]}`);
      el.attrs[attr[1]!] = unescape(attr[3] ?? attr[4] ?? '', `attribute ${attr[1]}`);
      pos += attr[0].length;
    }
    if (stack.length > 0) stack[stack.length - 1]!.children.push(el);
    else if (root) throw new Error('more than one root element');
    else root = el;
    if (doc.startsWith('/>', pos)) pos += 2;
    else {
      pos += 1;
      stack.push(el);
    }
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`);
  if (!root) throw new Error('no root element');
  return root;
}
