// RetrieveURL / BulkDataURI origins behind a reverse proxy: Forwarded (RFC 7239) and X-Forwarded-* believed
// only from configured trusted proxies, and only the part those proxies wrote (SECURITY.md 7).
import t, { type Test } from 'tap';
import { forwardedOrigin } from '../../src/http/forwarded.js';
import { trustedProxyList } from '../../src/security/trusted-proxies.js';
import { loadConfig } from '../../src/config/load.js';
import { testApp } from '../helpers/app.js';
import { multipartBody } from '../helpers/multipart.js';
import { testFile } from '../helpers/testdata.js';

const trusted = trustedProxyList(['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8']);

t.test('trusted proxy list: addresses and ranges, v4 and v6; anything else refused', async (t) => {
  t.throws(() => trustedProxyList(['localhost']), /not an IP address/);
  t.throws(() => trustedProxyList(['10.0.0.0/33']), /bad prefix/);
  t.throws(() => trustedProxyList(['10.0.0.0/8/1']), /not an IP address/);
  t.throws(() => trustedProxyList(['::1/129']), /bad prefix/);
  const env = { DICOMVAULT_SERVER_TRUSTED_PROXIES: '127.0.0.1,10.0.0.0/8' };
  t.same(loadConfig({ env }).server.trustedProxies, ['127.0.0.1', '10.0.0.0/8']);
  t.throws(() => loadConfig({ env: { DICOMVAULT_SERVER_TRUSTED_PROXIES: 'proxy.example.org' } }), /trustedProxies/);
  t.same(loadConfig({ env: {} }).server.trustedProxies, [], 'none by default');
});

t.test('Forwarded from a trusted peer: the element that peer wrote', async (t) => {
  const from = (forwarded: string, peer = '127.0.0.1') => forwardedOrigin({ forwarded }, peer, trusted);
  t.same(from('proto=https;host=pacs.example.org'), { proto: 'https', host: 'pacs.example.org' });
  t.same(from('for=192.0.2.7;proto=http;host="127.0.0.1:8080"'), { proto: 'http', host: '127.0.0.1:8080' }, 'quoted host with port');
  t.same(from('Proto=HTTPS;Host=PACS.example.org:443'), { proto: 'https', host: 'pacs.example.org:443' }, 'names and values case-insensitive');
  t.same(from('proto=https;host="[2001:db8::1]:8443"'), { proto: 'https', host: '[2001:db8::1]:8443' });
  t.same(from('proto=https;host=x', '::ffff:127.0.0.1'), { proto: 'https', host: 'x' }, 'IPv4-mapped peer address');
  t.same(from('proto=https;host=x', '10.1.2.3'), { proto: 'https', host: 'x' }, 'peer in a trusted range');

  // A client sends its own Forwarded to the proxy, which appends the real one: the client's is ignored.
  t.same(from('proto=https;host=evil.example, for=192.0.2.7;proto=https;host=pacs.example.org'), { proto: 'https', host: 'pacs.example.org' });
  // Two trusted proxies in a row: the outer one (whose address the inner one names in for=) wrote the first element.
  t.same(
    from('for=192.0.2.7;proto=https;host=pacs.example.org, for="10.0.0.5:4711";proto=http;host=inner.local'),
    { proto: 'https', host: 'pacs.example.org' },
    'step left past a trusted hop',
  );
  t.same(
    from('proto=https;host=evil.example, for=192.0.2.7;proto=http;host=inner.local, for=10.0.0.5;proto=https;host=pacs.example.org'),
    { proto: 'http', host: 'inner.local' },
    'stop at the first untrusted for=',
  );
});

t.test('Forwarded ignored: untrusted peer, malformed header, unsafe values', async (t) => {
  const from = (forwarded: string, peer = '127.0.0.1') => forwardedOrigin({ forwarded }, peer, trusted);
  t.equal(from('proto=https;host=pacs.example.org', '192.0.2.7'), undefined, 'untrusted peer');
  t.equal(forwardedOrigin({ forwarded: 'proto=https;host=x' }, undefined, trusted), undefined, 'no peer address');
  t.equal(forwardedOrigin({ forwarded: 'proto=https;host=x' }, '127.0.0.1', trustedProxyList([])), undefined, 'empty list');
  t.equal(from('proto=https;host'), undefined, 'pair without =');
  t.equal(from('proto=https;host="unterminated'), undefined, 'unterminated quote');
  t.equal(from('proto=ftp;host=x'), undefined, 'scheme other than http(s)');
  t.equal(from('proto=javascript;host=x'), undefined);
  t.equal(from('proto=https;host="evil.example/path"'), undefined, 'no path');
  t.equal(from('proto=https;host="user@evil.example"'), undefined, 'no userinfo');
  t.equal(from('proto=https;host="x:99999999"'), undefined, 'port too long');
  t.equal(from('proto=https'), undefined, 'no host');
  t.equal(from('host=x'), undefined, 'no proto');
});

t.test('X-Forwarded-Proto / X-Forwarded-Host: rightmost values, Forwarded preferred', async (t) => {
  const h = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example, pacs.example.org' };
  t.same(forwardedOrigin(h, '127.0.0.1', trusted), { proto: 'https', host: 'pacs.example.org' });
  t.same(forwardedOrigin({ ...h, forwarded: 'proto=http;host=gw.local' }, '127.0.0.1', trusted), { proto: 'http', host: 'gw.local' });
  t.same(forwardedOrigin({ 'x-forwarded-host': ['a.example', 'b.example'], 'x-forwarded-proto': 'http' }, '::1', trusted), { proto: 'http', host: 'b.example' }, 'repeated lines');
  t.equal(forwardedOrigin({ 'x-forwarded-host': 'pacs.example.org' }, '127.0.0.1', trusted), undefined, 'host without proto');
  t.equal(forwardedOrigin(h, '192.0.2.7', trusted), undefined, 'untrusted peer');
});

const CT = testFile('pydicom/test_files/CT_small.dcm');

async function storeAndQuery(t: Test, env: Record<string, string>, headers: Record<string, string>, remoteAddress = '127.0.0.1') {
  const { app } = await testApp(t, env);
  const { contentType, body } = multipartBody([CT]);
  const stow = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': contentType, ...headers }, payload: body, remoteAddress });
  t.equal(stow.statusCode, 200);
  const retrieveUrl = (stow.json() as Record<string, { Value?: string[] }>)['00081190']?.Value?.[0] ?? '';
  const qido = await app.inject({ method: 'GET', url: '/dicomweb/studies', headers, remoteAddress });
  const qidoUrl = ((qido.json() as Record<string, { Value?: string[] }>[])[0]?.['00081190']?.Value ?? [])[0] ?? '';
  return { retrieveUrl, qidoUrl };
}

t.test('through the application: URLs follow a trusted gateway, never an untrusted client', async (t) => {
  const headers = { forwarded: 'for=192.0.2.7;proto=http;host="127.0.0.1:8080"' };
  const trustedApp = await storeAndQuery(t, { DICOMVAULT_SERVER_TRUSTED_PROXIES: '127.0.0.1' }, headers);
  t.match(trustedApp.retrieveUrl, /^http:\/\/127\.0\.0\.1:8080\/dicomweb\/studies\/[0-9.]+$/, 'STOW RetrieveURL');
  t.match(trustedApp.qidoUrl, /^http:\/\/127\.0\.0\.1:8080\/dicomweb\/studies\/[0-9.]+$/, 'QIDO RetrieveURL');

  const untrusted = await storeAndQuery(t, { DICOMVAULT_SERVER_TRUSTED_PROXIES: '10.0.0.0/8' }, headers);
  t.match(untrusted.qidoUrl, /^https:\/\//, 'peer not in the list: own address');
  t.notMatch(untrusted.qidoUrl, /8080/);

  const publicWins = await storeAndQuery(
    t,
    { DICOMVAULT_SERVER_TRUSTED_PROXIES: '127.0.0.1', DICOMVAULT_SERVER_PUBLIC_URL: 'https://pacs.example.org/dicomweb' },
    headers,
  );
  t.match(publicWins.qidoUrl, /^https:\/\/pacs\.example\.org\/dicomweb\/studies\//, 'a configured public URL always wins');
});
