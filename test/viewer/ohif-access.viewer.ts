// Who sees what in the OHIF viewer through the archive's web listener (issue 5): the browser presents no
// client certificate; it gets in with an OIDC bearer access token, whose roles and institution claims the
// archive's Cedar policies judge, or with a share link exchanged for an HttpOnly session cookie. Nothing is
// faked: `dicomvault serve` as a process with its web listener on, a real OIDC issuer (test/helpers/oidc-issuer.ts:
// keys, JWKS, discovery), OHIF (npm @ohif/app production build) in Debian's headless Chromium behind the
// same-origin gateway (gateway.ts, upstream 'web': it forwards the browser's Authorization header and the
// share-session cookie, and passes back Set-Cookie and WWW-Authenticate).
//
// The bearer token is put on every request of a browser context (Playwright extraHTTPHeaders): OHIF's own OIDC
// sign-in (its `oidc` config, authorization code flow with PKCE) needs a full authorization server with a login
// page, which the test issuer is not. What the archive sees is the same: `Authorization: Bearer <access token>`.
//
// The gateway is plain http://127.0.0.1. The share cookie is `__Host-` prefixed (Secure, Path=/): Chromium
// treats http://127.0.0.1 as a secure context (a loopback address, like localhost) and accepts and sends Secure
// cookies there, so no https gateway is needed for the test (a real deployment serves the viewer over https).
//
// Run with `npm run test:viewer`. On failure the screenshots, browser console and DICOMweb requests are kept in
// a temporary folder whose path is printed (VIEWER_KEEP_ARTIFACTS=1 keeps it after a pass too);
// VIEWER_LOG_LEVEL=debug logs each request the gateway forwards.
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { chromium, type Browser, type BrowserContext, type Page, type Response as PageResponse } from 'playwright-core';
import t, { type Test } from 'tap';
import { request, type ClientTls } from '../helpers/https-client.js';
import { startOidcIssuer } from '../helpers/oidc-issuer.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startServer, type RunningServer } from '../e2e/cli-process.js';
import { startGateway, type Gateway } from './gateway.js';
import {
  CHROMIUM_ARGS,
  generateCtStudies,
  isImage,
  saveSeen,
  skipTour,
  stow,
  viewerDeps,
  viewportPixels,
  waitForImage,
  watch,
  withInstitution,
  type GeneratedStudy,
  type PixelStats,
  type Seen,
} from './viewer-kit.js';

const log = pino({ level: process.env.VIEWER_LOG_LEVEL ?? 'info' }, pino.destination(2));

const INSTITUTION_A = 'Hospital A';
const INSTITUTION_B = 'Hospital B';

// Radiology searches and reads the studies of its own institution (policies/examples.cedar c); the dev client
// certificate (admin) stores and shares.
const POLICIES = `
@id("admin-all")
permit (principal in Role::"admin", action, resource);

@id("radiology-institution")
permit (principal in Role::"radiology", action in [Action::"search", Action::"read"], resource is Study)
when { principal.institution != "" && resource.institution == principal.institution };
`;

const deps = viewerDeps();

/** GET /dicomweb/studies (QIDO-RS, study level): the study list's search, not /studies/{uid}/... */
const isStudySearch = (r: PageResponse): boolean => r.request().method() === 'GET' && new URL(r.url()).pathname === '/dicomweb/studies';

/** Every BulkDataURI in a DICOM JSON metadata answer, nested items included. */
function bulkDataUris(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(bulkDataUris);
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => (k === 'BulkDataURI' && typeof v === 'string' ? [v] : bulkDataUris(v)));
}

/** A whole word of the page's text. */
const word = (w: string): RegExp => new RegExp(`\\b${w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`);

/** Study Instance UIDs of a QIDO-RS JSON answer. */
function studyUids(body: unknown): string[] {
  if (!Array.isArray(body)) return [];
  return body.map((d: Record<string, { Value?: unknown[] }>) => String(d['0020000D']?.Value?.[0] ?? ''));
}

t.test('OHIF through the web listener: bearer tokens see their institution only, a share link opens one study', async (t) => {
  const work = tempDir(t, 'dicomvault-viewer-access-');
  const artifacts = fs.mkdtempSync(path.join(os.tmpdir(), 'dicomvault-viewer-access-artifacts-'));
  const archiveDir = path.join(work, 'archive');
  fs.mkdirSync(archiveDir);

  let archive: RunningServer | undefined;
  let gateway: Gateway | undefined;
  let browser: Browser | undefined;
  t.teardown(async () => {
    await browser?.close();
    await gateway?.close();
    await archive?.stop();
    if (t.passing() && !process.env.VIEWER_KEEP_ARTIFACTS) fs.rmSync(artifacts, { recursive: true, force: true });
    else {
      if (archive) {
        const { stdout, stderr } = archive.output();
        fs.writeFileSync(path.join(artifacts, 'archive-output.txt'), stdout + stderr);
      }
      console.error(`# viewer access test artifacts (screenshots, console, requests): ${artifacts}`);
    }
  });

  const issuer = await startOidcIssuer(t);
  const policyFile = path.join(work, 'policies.cedar');
  fs.writeFileSync(policyFile, POLICIES);

  // The gateway listens first: the archive's share-link redirect (shares.viewerUrl) and its links and URLs
  // (web.publicUrl, as a hospital configures it behind a gateway) name the gateway. With web.publicUrl set the
  // archive prints that instead of the listener's address, so the web listener gets a port picked here; the
  // gateway gets the archive's development CA (to verify the web listener) once the archive has made it.
  const webPort = await freePort();
  const upstreamTls: ClientTls = { ca: '' };
  gateway = await startGateway({ ohifDist: deps.ohifDist, archive: `https://127.0.0.1:${webPort}/dicomweb`, upstream: 'web', tls: upstreamTls, log });
  const g = gateway.origin;
  archive = await startServer(t, archiveDir, {
    DICOMVAULT_SERVER_TRUSTED_PROXIES: '127.0.0.1,::1',
    DICOMVAULT_POLICY_FILE: policyFile,
    DICOMVAULT_WEB_ENABLED: 'true',
    DICOMVAULT_WEB_PORT: String(webPort),
    DICOMVAULT_WEB_PUBLIC_URL: `${g}/dicomweb`,
    DICOMVAULT_OIDC_ISSUER: issuer.issuer,
    DICOMVAULT_OIDC_AUDIENCE: issuer.audience,
    DICOMVAULT_OIDC_JWKS_URI: issuer.jwksUri,
    DICOMVAULT_SHARES_VIEWER_URL: `${g}/viewer?StudyInstanceUIDs={StudyInstanceUID}`,
  });
  upstreamTls.ca = archive.tls.ca;
  t.equal(archive.web, `${g}/dicomweb`, 'the archive printed its web listener URL: the public one, the gateway');

  const [a, b] = generateCtStudies(path.join(work, 'ct'), { studies: 2, count: 20, seed: 43 }) as [GeneratedStudy, GeneratedStudy];
  t.not(a.familyName, b.familyName, 'the two studies are of two patients with different names');
  a.files = a.files.map((f) => withInstitution(f, INSTITUTION_A));
  b.files = b.files.map((f) => withInstitution(f, INSTITUTION_B));
  t.equal(await stow(archive, a.files), 200, `STOW (mTLS, admin): study A, ${a.files.length} slices of ${INSTITUTION_A}`);
  t.equal(await stow(archive, b.files), 200, `STOW (mTLS, admin): study B, ${b.files.length} slices of ${INSTITUTION_B}`);

  browser = await chromium.launch({ executablePath: deps.chromium, args: CHROMIUM_ARGS });

  /** A fresh browser context: no cookies; `token` on every request when given. Service workers off: their fetches would not carry the header. */
  async function newContext(t: Test, token?: string): Promise<BrowserContext> {
    const context = await browser!.newContext({
      viewport: { width: 1280, height: 800 },
      serviceWorkers: 'block',
      ...(token ? { extraHTTPHeaders: { authorization: `Bearer ${token}` } } : {}),
    });
    t.teardown(() => context.close());
    return context;
  }

  async function newPage(t: Test, context: BrowserContext, name: string): Promise<{ page: Page; seen: Seen; save: (suffix: string) => Promise<void> }> {
    const page = await context.newPage();
    const seen = watch(page);
    const save = async (suffix: string) => {
      await page.screenshot({ path: path.join(artifacts, `${name}-${suffix}.png`) }).catch(() => undefined);
      saveSeen(artifacts, name, seen);
    };
    t.teardown(async () => {
      await save('end');
      seen.closing = true;
      await page.close();
    });
    return { page, seen, save };
  }

  /** Opens a study in the viewer and waits for an image (or gives up after timeoutMs). */
  async function openStudy(page: Page, studyUid: string, timeoutMs: number): Promise<PixelStats | null> {
    await page.goto(`${g}/viewer?StudyInstanceUIDs=${encodeURIComponent(studyUid)}`);
    return showsImage(page, timeoutMs);
  }

  async function showsImage(page: Page, timeoutMs: number): Promise<PixelStats | null> {
    const canvas = await page
      .locator('canvas.cornerstone-canvas')
      .first()
      .waitFor({ state: 'attached', timeout: timeoutMs })
      .then(() => true)
      .catch(() => false);
    await skipTour(page);
    if (!canvas) return null;
    const stats = await waitForImage(page, timeoutMs);
    await skipTour(page);
    return stats;
  }

  function assertImage(t: Test, stats: PixelStats | null, what: string) {
    t.ok(isImage(stats), `${what}: the viewport shows an image (${stats ? `${(stats.lit * 100).toFixed(1)}% lit, ${stats.levels} levels` : 'no canvas'})`);
  }

  /** The worklist at / : OHIF's QIDO-RS study search, its answer, and the list's text once rendered. */
  async function worklist(page: Page, expectText?: string): Promise<{ search: PageResponse; text: string }> {
    const searched = page.waitForResponse(isStudySearch, { timeout: 45_000 });
    await page.goto(`${g}/`);
    const search = await searched;
    await skipTour(page);
    if (expectText) await page.getByText(expectText).first().waitFor({ timeout: 30_000 }).catch(() => undefined);
    else await page.waitForTimeout(2000);
    return { search, text: await page.locator('body').innerText() };
  }

  const radiologistA = () => issuer.sign({ sub: 'rad-a', roles: ['radiology'], institution: INSTITUTION_A });

  await t.test(`bearer token, radiology at ${INSTITUTION_A}`, async (t) => {
    const context = await newContext(t, await radiologistA());

    await t.test('the worklist lists study A and not study B', async (t) => {
      const { page, seen, save } = await newPage(t, context, 'bearer-worklist');
      const { search, text } = await worklist(page, a.familyName);
      await save('list');
      t.equal(search.status(), 200, 'OHIF searched the studies (QIDO-RS) and got 200');
      t.same(studyUids(await search.json()), [a.studyUid], 'the search answered study A only');
      t.match(text, word(a.familyName), `the list shows study A (patient ${a.familyName})`);
      t.notMatch(text, word(b.familyName), `the list does not show study B (patient ${b.familyName})`);
      t.same(
        seen.dicomweb.filter((r) => r.status >= 400),
        [],
        'no DICOMweb request of the worklist failed',
      );
    });

    await t.test('study A opens and shows the image', async (t) => {
      const { page, seen, save } = await newPage(t, context, 'bearer-study-a');
      const stats = await openStudy(page, a.studyUid, 45_000);
      await save('image');
      assertImage(t, stats, 'study A');
      t.same(
        seen.dicomweb.filter((r) => r.status >= 400),
        [],
        'no DICOMweb request of OHIF got a 4xx/5xx',
      );
      t.ok(seen.dicomweb.some((r) => /\/frames\/\d+/.test(r.url) && r.status === 200), 'OHIF fetched frames with the token');
    });

    await t.test('study B by URL: no image; its metadata answers 404', async (t) => {
      const { page, seen, save } = await newPage(t, context, 'bearer-study-b');
      const seriesOfB = `/dicomweb/studies/${b.studyUid}/series`;
      const searched = page.waitForResponse((r) => new URL(r.url()).pathname === seriesOfB, { timeout: 45_000 }).catch(() => undefined);
      await page.goto(`${g}/viewer?StudyInstanceUIDs=${encodeURIComponent(b.studyUid)}`);
      const search = await searched;
      // Whatever OHIF does next, give it time to draw if it were going to.
      await page.waitForTimeout(3000);
      const stats = await viewportPixels(page);
      await save('no-image');
      t.notOk(isImage(stats), 'the viewport shows no image of study B');
      // OHIF (study lazy load) first searches the study's series; with none found it asks no metadata at all.
      t.ok(search, "OHIF searched study B's series (QIDO-RS)");
      if (search) {
        const body = search.status() === 200 ? await search.json() : [];
        t.ok([200, 204].includes(search.status()) && Array.isArray(body) && body.length === 0, `and found none (${search.status()})`);
      }
      const forB = seen.dicomweb.filter((r) => r.url.startsWith(`/dicomweb/studies/${b.studyUid}/`));
      t.same(
        forB.filter((r) => /\/(metadata|frames|instances)\b/.test(r.url) && r.status < 400),
        [],
        `no metadata, instance or frame of study B reached the page (${forB.map((r) => `${r.status} ${r.url.split('?')[0]}`).join(', ')})`,
      );
      // The page's request context carries the same Authorization header (extraHTTPHeaders).
      const accept = { accept: 'application/dicom+json' };
      const metadata = await page.request.get(`${g}/dicomweb/studies/${b.studyUid}/metadata`, { headers: accept });
      t.equal(metadata.status(), 404, "study B's metadata with this token: 404");
      const unknown = await page.request.get(`${g}/dicomweb/studies/1.2.826.0.1.3680043.10.999.1/metadata`, { headers: accept });
      t.equal(unknown.status(), 404, 'as for a study that does not exist (404)');
      const own = await page.request.get(`${g}/dicomweb/studies/${a.studyUid}/metadata`, { headers: accept });
      t.equal(own.status(), 200, "while study A's metadata answers 200");
      const uris = bulkDataUris(own.status() === 200 ? await own.json() : []);
      t.ok(uris.length > 0, `study A's metadata has ${uris.length} BulkDataURIs`);
      t.same(uris.filter((u) => !u.startsWith(`${g}/dicomweb/studies/${a.studyUid}/`)), [], 'each on the gateway origin (web.publicUrl)');
    });
  });

  await t.test('an expired bearer token: the search answers 401 with a Bearer challenge and nothing is listed', async (t) => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await issuer.sign({ sub: 'rad-a', roles: ['radiology'], institution: INSTITUTION_A, iat: now - 900, exp: now - 600 });
    const context = await newContext(t, expired);
    const { page, save } = await newPage(t, context, 'expired-worklist');
    const { search, text } = await worklist(page, 'No studies available');
    await save('list');
    t.equal(search.status(), 401, 'QIDO-RS answered 401');
    const challenge = (await search.allHeaders())['www-authenticate'] ?? '';
    t.match(challenge, /^Bearer realm="dicomvault", error="invalid_token"/, `with WWW-Authenticate through the gateway (${challenge})`);
    t.notMatch(text, word(a.familyName), 'study A is not listed');
    t.notMatch(text, word(b.familyName), 'study B is not listed');
  });

  async function createShare(body: Record<string, unknown>): Promise<{ status: number; share: { id: string; url: string; token: string } }> {
    const res = await request(`${archive!.base}/shares`, archive!.tls, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: Buffer.from(JSON.stringify(body)),
    });
    return { status: res.status, share: JSON.parse(res.body.toString('utf8')) as { id: string; url: string; token: string } };
  }

  await t.test('a share link for study B, opened in a browser without a token', async (t) => {
    const { status, share } = await createShare({ studyInstanceUID: b.studyUid, scope: 'view' });
    t.equal(status, 201, 'POST /shares over mTLS (admin): 201');
    t.equal(share.url, `${g}/dicomweb/share/${share.token}`, 'the link leads to the gateway (web.publicUrl)');

    const context = await newContext(t);
    const { page, seen, save } = await newPage(t, context, 'share');
    const landing = await page.goto(share.url);
    t.equal(landing?.status(), 200, 'the landing page (GET) answers 200');
    t.same(await context.cookies(), [], 'the landing page sets no cookie (a GET uses nothing up)');
    const exchanged = page.waitForResponse((r) => r.request().method() === 'POST' && r.url() === share.url);
    await page.getByRole('button', { name: 'Open' }).click();
    const exchange = await exchanged;
    t.equal(exchange.status(), 303, 'submitting the form (POST) answers 303');
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === '__Host-dv-share');
    t.ok(session, 'the browser kept the __Host-dv-share session cookie');
    t.match(session, { httpOnly: true, secure: true, sameSite: 'Strict', path: '/' }, 'HttpOnly, Secure, SameSite=Strict, Path=/');
    const stats = await showsImage(page, 45_000);
    await save('image');
    t.equal(new URL(page.url()).pathname, '/viewer', `redirected to the viewer (${page.url()})`);
    t.equal(new URL(page.url()).searchParams.get('StudyInstanceUIDs'), b.studyUid, 'for study B');
    assertImage(t, stats, 'study B through the share link');
    t.same(
      seen.dicomweb.filter((r) => r.status >= 400),
      [],
      'no DICOMweb request of OHIF got a 4xx/5xx',
    );

    // The page's own request context: the same cookie jar, so the same session cookie.
    const list = await page.request.get(`${g}/dicomweb/studies`, { headers: { accept: 'application/dicom+json' } });
    t.equal(list.status(), 200, 'QIDO /studies with the session: 200');
    t.same(studyUids(await list.json()), [b.studyUid], 'lists study B only');
    const otherMetadata = await page.request.get(`${g}/dicomweb/studies/${a.studyUid}/metadata`, { headers: { accept: 'application/dicom+json' } });
    t.equal(otherMetadata.status(), 404, "study A's metadata with the session: 404");

    const revoked = await request(`${archive!.base}/shares/${share.id}`, archive!.tls, { method: 'DELETE' });
    t.equal(revoked.status, 204, 'DELETE /shares/{id} over mTLS: 204 (revoked)');
    const after = await page.request.get(`${g}/dicomweb/studies`, { headers: { accept: 'application/dicom+json' } });
    t.equal(after.status(), 401, 'the same browser session after the revocation: 401');
    t.match(after.headers()['www-authenticate'] ?? '', /^Bearer realm="dicomvault"/, 'with a Bearer challenge');
  });

  await t.test('a share link with maxUses 1 opens once', async (t) => {
    const { status, share } = await createShare({ studyInstanceUID: b.studyUid, scope: 'view', maxUses: 1 });
    t.equal(status, 201, 'POST /shares {maxUses: 1}: 201');

    const first = await newContext(t);
    const one = await first.request.post(share.url, { form: { secondFactor: '' }, maxRedirects: 0 });
    t.equal(one.status(), 303, 'the first exchange: 303 to the viewer');
    t.ok((await first.cookies()).some((c) => c.name === '__Host-dv-share'), 'and a session cookie');

    const second = await newContext(t);
    const { page, save } = await newPage(t, second, 'share-used-up');
    await page.goto(share.url);
    const exchanged = page.waitForResponse((r) => r.request().method() === 'POST' && r.url() === share.url);
    await page.getByRole('button', { name: 'Open' }).click();
    const exchange = await exchanged;
    await save('refused');
    t.equal(exchange.status(), 401, 'the second exchange of the same link (another browser): 401');
    t.match(await page.locator('[role=alert]').innerText(), /cannot be opened/, 'the landing page says the link cannot be opened');
    t.same(await second.cookies(), [], 'and the browser got no session cookie');
  });

  // expiresInHours is a positive number, not only an integer: 0.0005 h is 1.8 s.
  await t.test('a share link that expires: its session ends with it, and it cannot be exchanged again', async (t) => {
    const { status, share } = await createShare({ studyInstanceUID: b.studyUid, scope: 'view', expiresInHours: 0.0005 });
    t.equal(status, 201, 'POST /shares {expiresInHours: 0.0005}: 201');
    const context = await newContext(t);
    const one = await context.request.post(share.url, { form: { secondFactor: '' }, maxRedirects: 0 });
    t.equal(one.status(), 303, 'exchanged before it expires: 303');
    const cookie = (await context.cookies()).find((c) => c.name === '__Host-dv-share');
    t.ok(cookie && cookie.expires > 0 && cookie.expires <= Date.now() / 1000 + 2.5, 'the session cookie lasts no longer than the link');
    const before = await context.request.get(`${g}/dicomweb/studies`, { headers: { accept: 'application/dicom+json' } });
    t.equal(before.status(), 200, 'QIDO with the session before the expiry: 200');
    const cookieHeader = `__Host-dv-share=${cookie?.value ?? ''}`;
    await new Promise((resolve) => setTimeout(resolve, 2500));
    // The browser has dropped the expired cookie by now; sent anyway, the archive refuses the session itself.
    const late = await fetch(`${g}/dicomweb/studies`, { headers: { accept: 'application/dicom+json', cookie: cookieHeader } });
    t.equal(late.status, 401, 'the session cookie after the expiry (sent by hand): 401');
    const again = await context.request.post(share.url, { form: { secondFactor: '' }, maxRedirects: 0 });
    t.equal(again.status(), 401, 'exchanging the expired link: 401');
  });
});

/** A free loopback port (the kernel's choice, released at once for the archive to take). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
