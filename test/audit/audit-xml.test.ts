// PS3.15 A.5.1 audit XML: element/attribute names and order, coded values, base64 query, and escaping of
// hostile values (SECURITY.md 8 case 34) checked with the strict well-formedness parser of the XML tests.

import t from 'tap';
import { auditMessageToXml, escapeXml, type AuditMessageInput } from '../../src/audit/audit-xml.js';
import type { AuditRecord } from '../../src/audit/audit-record.js';
import { parseXml, type XmlElement } from '../dicom/xml-check.js';

const DCM = (code: string, displayName: string) => ({ code, codeSystem: 'DCM', displayName });

function queryMessage(over: Partial<AuditMessageInput> = {}): AuditMessageInput {
  return {
    eventId: DCM('110112', 'Query'),
    action: 'E',
    dateTime: new Date('2026-11-29T10:00:00.123Z'),
    outcome: 0,
    eventTypes: [{ code: 'RAD-129', codeSystem: 'IHE Transactions', displayName: 'QIDO-RS' }],
    participants: [
      {
        userId: 'urn:dicomvault:principal:viewer-1',
        alternativeUserId: 'fp:ab12',
        userName: 'Dr. Who',
        userIsRequestor: true,
        roleIdCode: DCM('110153', 'Source Role ID'),
        networkAccessPoint: { id: '10.0.0.7', typeCode: 2 },
      },
      { userId: 'https://pacs.example/dicomweb', userIsRequestor: false, roleIdCode: DCM('110152', 'Destination Role ID'), networkAccessPoint: { id: 'pacs.example', typeCode: 1 } },
    ],
    source: { id: 'dicomvault@pacs.example', enterpriseSiteId: 'Hospital A' },
    objects: [
      { id: '1.2.840.10008.5.1.4.1.2.2.1', typeCode: 2, roleCode: 3, idTypeCode: DCM('110181', 'SOP Class UID'), query: new TextEncoder().encode('PatientName=DOE*&limit=10'), details: [{ type: 'TransferSyntax', value: Buffer.from('1.2.840.10008.1.2').toString('base64') }] },
      { id: 'PID-1', typeCode: 1, roleCode: 1, idTypeCode: { code: '2', codeSystem: 'RFC-3881', displayName: 'Patient Number' }, name: 'Doe^John' },
    ],
    ...over,
  };
}

const children = (el: XmlElement, name: string) => el.children.filter((c) => c.name === name);

t.test('structure follows PS3.15 A.5.1', async (t) => {
  const xml = auditMessageToXml(queryMessage());
  t.ok(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?><AuditMessage>'));
  const root = parseXml(xml);
  t.equal(root.name, 'AuditMessage');
  t.same(root.children.map((c) => c.name), ['EventIdentification', 'ActiveParticipant', 'ActiveParticipant', 'AuditSourceIdentification', 'ParticipantObjectIdentification', 'ParticipantObjectIdentification']);

  const event = root.children[0]!;
  t.same(event.attrs, { EventActionCode: 'E', EventDateTime: '2026-11-29T10:00:00.123Z', EventOutcomeIndicator: '0' });
  t.same(event.children.map((c) => [c.name, c.attrs]), [
    ['EventID', { 'csd-code': '110112', codeSystemName: 'DCM', originalText: 'Query' }],
    ['EventTypeCode', { 'csd-code': 'RAD-129', codeSystemName: 'IHE Transactions', originalText: 'QIDO-RS' }],
  ]);

  const [requestor, destination] = children(root, 'ActiveParticipant');
  t.same(requestor!.attrs, { UserID: 'urn:dicomvault:principal:viewer-1', AlternativeUserID: 'fp:ab12', UserName: 'Dr. Who', UserIsRequestor: 'true', NetworkAccessPointID: '10.0.0.7', NetworkAccessPointTypeCode: '2' });
  t.same(requestor!.children[0], { name: 'RoleIDCode', attrs: { 'csd-code': '110153', codeSystemName: 'DCM', originalText: 'Source Role ID' }, children: [], text: '' });
  t.same(destination!.attrs, { UserID: 'https://pacs.example/dicomweb', UserIsRequestor: 'false', NetworkAccessPointID: 'pacs.example', NetworkAccessPointTypeCode: '1' });

  const source = children(root, 'AuditSourceIdentification')[0]!;
  t.same(source.attrs, { AuditEnterpriseSiteID: 'Hospital A', AuditSourceID: 'dicomvault@pacs.example' });
  t.same(source.children.map((c) => [c.name, c.attrs]), [['AuditSourceTypeCode', { 'csd-code': '4', codeSystemName: 'DCM', originalText: 'Application Server Process' }]]);

  const [query, patient] = children(root, 'ParticipantObjectIdentification');
  t.same(query!.attrs, { ParticipantObjectID: '1.2.840.10008.5.1.4.1.2.2.1', ParticipantObjectTypeCode: '2', ParticipantObjectTypeCodeRole: '3' });
  t.same(query!.children.map((c) => c.name), ['ParticipantObjectIDTypeCode', 'ParticipantObjectQuery', 'ParticipantObjectDetail']);
  t.equal(Buffer.from(query!.children[1]!.text, 'base64').toString('utf8'), 'PatientName=DOE*&limit=10');
  t.equal(Buffer.from(query!.children[2]!.attrs.value!, 'base64').toString('utf8'), '1.2.840.10008.1.2');
  t.same(patient!.children.map((c) => [c.name, c.text]), [['ParticipantObjectIDTypeCode', ''], ['ParticipantObjectName', 'Doe^John']]);
  t.same(patient!.children[0]!.attrs, { 'csd-code': '2', codeSystemName: 'RFC-3881', originalText: 'Patient Number' });
});

t.test('study object: description, SOP classes, accession; optional parts omitted', async (t) => {
  const xml = auditMessageToXml(queryMessage({
    action: undefined,
    eventTypes: undefined,
    outcome: 8,
    outcomeDescription: 'disk full',
    objects: [{ id: '1.2.3', typeCode: 2, roleCode: 3, idTypeCode: DCM('110180', 'Study Instance UID'), description: 'CT', sopClasses: [{ uid: '1.2.840.10008.5.1.4.1.1.2', numberOfInstances: 12 }], accessionNumbers: ['A-1'] }],
  }));
  const root = parseXml(xml);
  t.same(root.children[0]!.attrs, { EventDateTime: '2026-11-29T10:00:00.123Z', EventOutcomeIndicator: '8' });
  t.same(root.children[0]!.children.map((c) => [c.name, c.text]), [['EventID', ''], ['EventOutcomeDescription', 'disk full']]);
  const study = children(root, 'ParticipantObjectIdentification')[0]!;
  t.same(study.children.map((c) => [c.name, c.attrs, c.text]), [
    ['ParticipantObjectIDTypeCode', { 'csd-code': '110180', codeSystemName: 'DCM', originalText: 'Study Instance UID' }, ''],
    ['ParticipantObjectDescription', {}, 'CT'],
    ['SOPClass', { UID: '1.2.840.10008.5.1.4.1.1.2', NumberOfInstances: '12' }, ''],
    ['Accession', { Number: 'A-1' }, ''],
  ]);
  t.throws(() => auditMessageToXml(queryMessage({ participants: [] })), /ActiveParticipant/);
});

t.test('hostile values stay data: markup, quotes, CR/LF/tab, NUL and other forbidden characters', async (t) => {
  const hostile = `</AuditMessage><x a="1">&amp;'"]]>\r\n\tA\u0000B\u0001\u001F\uFFFE\uD800C`;
  const expected = `</AuditMessage><x a="1">&amp;'"]]>\r\n\tA\uFFFDB\uFFFD\uFFFD\uFFFD\uFFFDC`;
  const xml = auditMessageToXml(queryMessage({
    participants: [{ userId: hostile, userName: hostile, userIsRequestor: true, roleIdCode: { code: hostile, codeSystem: hostile, displayName: hostile } }],
    source: { id: hostile, enterpriseSiteId: hostile },
    outcomeDescription: hostile,
    objects: [{ id: hostile, typeCode: 1, idTypeCode: DCM('2', hostile), name: hostile, description: hostile }],
  }));
  // Nothing raw: no NUL, no C0 control, no second root.
  t.notOk(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/.test(xml));
  t.equal(xml.split('<AuditMessage>').length, 2);
  t.equal(xml.split('</AuditMessage>').length, 2);
  const root = parseXml(xml); // throws when not well-formed
  const participant = children(root, 'ActiveParticipant')[0]!;
  t.equal(participant.attrs.UserID, expected);
  t.equal(participant.attrs.UserName, expected);
  t.same(participant.children[0]!.attrs, { 'csd-code': expected, codeSystemName: expected, originalText: expected });
  t.equal(children(root, 'AuditSourceIdentification')[0]!.attrs.AuditSourceID, expected);
  t.equal(root.children[0]!.children.find((c) => c.name === 'EventOutcomeDescription')!.text, expected);
  const object = children(root, 'ParticipantObjectIdentification')[0]!;
  t.equal(object.attrs.ParticipantObjectID, expected);
  t.equal(object.children.find((c) => c.name === 'ParticipantObjectName')!.text, expected);
  t.equal(object.children.find((c) => c.name === 'ParticipantObjectDescription')!.text, expected);
});

t.test('an AuditRecord (audit-record.ts) is accepted as it is', async (t) => {
  const record: AuditRecord = {
    eventId: { code: '110112', codeSystem: 'DCM', displayName: 'Query' },
    action: 'E',
    dateTime: '2026-11-29T10:00:00.000Z',
    outcome: 0,
    participants: [{ userId: 'u', userIsRequestor: true, networkAccessPoint: { typeCode: 2, id: '10.0.0.1' } }],
    source: { id: 'dicomvault', typeCode: '4' },
    objects: [{ typeCode: 2, roleCode: 24, idTypeCode: { code: '110181', codeSystem: 'DCM', displayName: 'SOP Class UID' }, id: 'SearchForStudies', query: Buffer.from('a=1').toString('base64') }],
  };
  const input: AuditMessageInput = record; // compile-time check: the two models stay compatible
  const root = parseXml(auditMessageToXml(input));
  t.same(children(root, 'AuditSourceIdentification')[0]!.children[0]!.attrs, { 'csd-code': '4', codeSystemName: 'DCM', originalText: 'Application Server Process' });
  const object = children(root, 'ParticipantObjectIdentification')[0]!;
  t.equal(object.attrs.ParticipantObjectTypeCodeRole, '24');
  t.equal(Buffer.from(object.children[1]!.text, 'base64').toString(), 'a=1', 'an already-base64 query is not encoded twice');
});

t.test('escapeXml', async (t) => {
  t.equal(escapeXml(`a&b<c>d"e'f`), 'a&amp;b&lt;c&gt;d&quot;e&apos;f');
  t.equal(escapeXml('x\ty\nz\r'), 'x&#9;y&#10;z&#13;');
  t.equal(escapeXml('\u0000\u000B\uFFFF'), '\uFFFD\uFFFD\uFFFD');
  // A valid surrogate pair (U+1F600) and non-ASCII text pass unchanged.
  t.equal(escapeXml('山田 \u{1F600}'), '山田 \u{1F600}');
  t.equal(escapeXml('\uDC00\uD83D'), '\uFFFD\uFFFD');
});
