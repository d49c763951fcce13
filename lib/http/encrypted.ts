// Files the drop box cannot read: an age file (its header says so) gets a page that says what it is and
// how to open it — never a preview. The key is the link's #fragment, which browsers never send, so the
// page can only name it, never show it.

import type { FileManifest } from '../store';
import type { Deps } from './deps';
import { html, type Html } from './negotiate';
import { AGE_ARMOR, isAgeHeader } from '../age';

/** True when the stored file starts with an age header (binary or armored). */
export async function isAgeFile(d: Deps, m: FileManifest): Promise<boolean> {
  if (m.size === 0) return false;
  const parts: Buffer[] = [];
  for await (const c of d.store.read(m, 0, Math.min(m.size, AGE_ARMOR.length) - 1)) parts.push(Buffer.from(c as Buffer));
  return isAgeHeader(Buffer.concat(parts));
}

/** The page's part for an encrypted file or drop: what it is, and the two ways to open it. */
export function encryptedPanel(f: { page: string; fileUrl?: string; drop?: boolean }): Html {
  const tor = /\.onion(:\d+)?(\/|$)/.test(f.page) ? '--socks5-hostname 127.0.0.1:9050 ' : '';
  return html`<section class="panel" aria-labelledby="enc"><h2 id="enc">Encrypted</h2>
    <p>${f.drop ? 'These files are' : 'This file is'} encrypted with <a href="https://age-encryption.org">age</a>. This drop box cannot read ${f.drop ? 'them' : 'it'},
      so there is no preview. The key is the part of your link after <code>#</code> (<code>AGE-SECRET-KEY-1…</code>); browsers never send it, so it never reached this server.</p>
    <p>Open ${f.drop ? 'them' : 'it'} with bitdrop (it downloads through tor, checks, and decrypts):</p>
    <pre>bitdrop get '${f.page}#AGE-SECRET-KEY-1…'</pre>
    ${f.fileUrl ? html`<p>or with age: put the key on a line of its own in <code>key.txt</code>, then</p>
    <pre>curl ${tor}-o file.age ${f.fileUrl}
age -d -i key.txt file.age | tar x</pre>
    <p class="muted">Files from <code>bitdrop upload --encrypt</code> hold their name inside (a one-file tar, hence <code>| tar x</code>);
      other age files open with <code>age -d -i key.txt -o FILE file.age</code>.</p>` : ''}
  </section>`;
}
