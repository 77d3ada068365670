// The page's XMPP session: everything it says to ejabberd and to orgchat's
// component, over ejabberd's WebSocket (RFC 7395) or, where a WebSocket
// cannot be established, over BOSH (XEP-0124/0206), through Strophe.js.
// No XML is written or parsed by hand here: stanzas are built with Strophe's
// builders and read with the DOM that Strophe hands over.
//
// The component's domain (unless the page is given it) and the host's upload
// service are found by service discovery (XEP-0030) on the user's host, and kept.
//
// What the component answers is specified in docs/protocol.md: the search
// (XEP-0055, "Search"), vCards (XEP-0054), the company information form in
// disco#info (XEP-0128, FORM_TYPE urn:orgchat:company:0), messages with
// receipts (XEP-0184), chat markers (XEP-0333) and chat states (XEP-0085),
// and the history in the user's own archive (XEP-0313, served by ejabberd).
// Photos go to ejabberd's HTTP File Upload (XEP-0363) and are sent as a link
// (XEP-0066), as standard clients send files. Requests to several companies
// are orgchat's urn:orgchat:request:0 ("Requests to several companies"):
// create, list in full, close, and the status headlines.

import { $iq, $msg, $pres, Strophe } from './node_modules/strophe.js/dist/strophe.esm.js';
import { TOKEN_LOGIN } from './push.js';

export const NS = {
  REGISTER: 'jabber:iq:register', // XEP-0077 in-band registration
  SEARCH: 'jabber:iq:search', // XEP-0055
  DATA: 'jabber:x:data', // XEP-0004
  RSM: 'http://jabber.org/protocol/rsm', // XEP-0059
  DISCO_INFO: 'http://jabber.org/protocol/disco#info', // XEP-0030
  DISCO_ITEMS: 'http://jabber.org/protocol/disco#items', // XEP-0030
  UPLOAD: 'urn:xmpp:http:upload:0', // XEP-0363
  OOB: 'jabber:x:oob', // XEP-0066
  VCARD: 'vcard-temp', // XEP-0054
  COMPANY: 'urn:orgchat:company:0', // orgchat's XEP-0128 form
  AWAY: 'urn:orgchat:away:0', // orgchat: when a closed company opens, on its away reply
  REQUEST: 'urn:orgchat:request:0', // orgchat: requests to several companies
  MAM: 'urn:xmpp:mam:2', // XEP-0313
  FORWARD: 'urn:xmpp:forward:0', // XEP-0297
  DELAY: 'urn:xmpp:delay', // XEP-0203
  RECEIPTS: 'urn:xmpp:receipts', // XEP-0184
  MARKERS: 'urn:xmpp:chat-markers:0', // XEP-0333
  CHATSTATES: 'http://jabber.org/protocol/chatstates', // XEP-0085
  SID: 'urn:xmpp:sid:0', // XEP-0359
  STANZAS: 'urn:ietf:params:xml:ns:xmpp-stanzas',
};

const IQ_TIMEOUT_MS = 15_000;
const CONNECT_TIMEOUT_MS = 15_000;

/** Strophe's connection states, as ``status`` events carry them. */
export const Status = Strophe.Status;

/** An IQ that came back as an error (or never came back: condition "timeout"). */
export class XmppError extends Error {
  constructor(condition, text = '', type = '') {
    super(text || condition);
    this.condition = condition;
    this.type = type;
  }

  static from(stanza) {
    if (!stanza) return new XmppError('timeout');
    const error = first(stanza, 'error');
    if (!error) return new XmppError('undefined-condition');
    let condition = 'undefined-condition';
    let text = '';
    for (const el of error.children) {
      if (el.namespaceURI !== NS.STANZAS) continue;
      if (el.localName === 'text') text = el.textContent;
      else condition = el.localName;
    }
    return new XmppError(condition, text, error.getAttribute('type') || '');
  }
}

// ------------------------------------------------------------------ DOM reading

/** The first descendant named ``name`` (in ``ns``, if given), or null. */
export function first(el, name, ns = null) {
  if (!el) return null;
  const found = ns ? el.getElementsByTagNameNS(ns, name) : el.getElementsByTagName(name);
  return found.length ? found[0] : null;
}

/** The direct children of ``el`` named ``name`` (in ``ns``, if given). */
function children(el, name, ns = null) {
  return Array.from(el ? el.children : []).filter(
    (c) => c.localName === name && (ns === null || c.namespaceURI === ns),
  );
}

function child(el, name, ns = null) {
  return children(el, name, ns)[0] || null;
}

function textOf(el, ...path) {
  let cur = el;
  for (const name of path) {
    cur = child(cur, name);
    if (!cur) return '';
  }
  return cur.textContent.trim();
}

/** XEP-0004: the values of the fields of a form (or of one of its items), by var. */
function fieldValues(el) {
  const values = {};
  for (const field of children(el, 'field')) {
    values[field.getAttribute('var')] = children(field, 'value').map((v) => v.textContent);
  }
  return values;
}

/** XEP-0004: the options of a list field, as [{value, label}]. */
function fieldOptions(form, name) {
  const field = children(form, 'field').find((f) => f.getAttribute('var') === name);
  return children(field, 'option').map((o) => ({
    value: textOf(o, 'value'),
    label: o.getAttribute('label') || textOf(o, 'value'),
  }));
}

export function bare(jid) {
  return Strophe.getBareJidFromJid(jid || '') || '';
}

function randomToken(bytes) {
  const buf = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(buf, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A message id: receipts and markers refer to it. */
export function messageId() {
  return `${Date.now().toString(36)}-${randomToken(6)}`;
}

/** A guest's credentials: a name that says it is a guest, a strong password. */
export function newGuest(host) {
  return { jid: `guest-${randomToken(4)}@${host}`, password: randomToken(16), guest: true };
}

// ------------------------------------------------------------------ the session

/**
 * One connection to ejabberd. Events (``on(name, fn)``): ``status`` (a
 * Strophe.Status and its condition), ``message`` (a chat message, live or
 * offline), ``receipt``, ``displayed``, ``chatstate``, ``bounce`` (an error
 * for a message we sent), ``requestStatus`` (a request's companies moved on:
 * {request, targets: [{jid, status}]}).
 */
export class Session {
  /**
   * ``endpoints``: the WebSocket's URL, then BOSH's, in the order to try them;
   * ``service``: orgchat's component domain, or null to find it by service discovery.
   */
  constructor({ endpoints, service }) {
    this.endpoints = endpoints;
    this.endpoint = null; // the one that worked, kept for reconnections
    this.service = service;
    this.found = new Map(); // what service discovery found: "kind host" -> a promise
    this.conn = null;
    this.jid = '';
    this.listeners = {};
  }

  on(name, fn) {
    (this.listeners[name] ||= []).push(fn);
  }

  emit(name, ...args) {
    for (const fn of this.listeners[name] || []) fn(...args);
  }

  /**
   * Log in (first registering the account in-band, XEP-0077, when
   * ``register`` is true). ``credentials``: {jid, password}, or {jid, token}
   * for the login of an email's link (SASL X-OAUTH2, push.js TOKEN_LOGIN).
   * Resolves once online; rejects with an XmppError
   * whose condition is "not-authorized" (wrong password), "conflict" (the
   * name is taken), "resource-constraint" (registrations too frequent),
   * "connection-failed" or the registration's error condition.
   */
  async connect(credentials, options = {}) {
    // The WebSocket first; BOSH when it cannot be established (a proxy that
    // does not pass WebSockets). What worked is used again on reconnection.
    let failure = null;
    for (const endpoint of this.endpoint ? [this.endpoint] : this.endpoints) {
      try {
        await this._connect(endpoint, credentials, options);
        this.endpoint = endpoint;
        return this.jid;
      } catch (error) {
        if (error.condition !== 'connection-failed') throw error;
        failure = error;
      }
    }
    throw failure;
  }

  _connect(endpoint, { jid, password, token }, { register = false }) {
    this.close();
    const conn = new Strophe.Connection(endpoint, token ? TOKEN_LOGIN : {});
    this.conn = conn;
    let registration = null;
    if (register) {
      // Strophe.js has no XEP-0077: register on the new stream before SASL,
      // then let Strophe authenticate with the same credentials. ejabberd's
      // mod_register answers the unauthenticated stream; Strophe only
      // dispatches to its system handlers before authentication.
      const authenticate = conn.authenticate.bind(conn);
      conn.authenticate = (mechanisms) => {
        const iq = $iq({ type: 'set', id: conn.getUniqueId('register') })
          .c('query', { xmlns: NS.REGISTER })
          .c('username')
          .t(Strophe.getNodeFromJid(jid))
          .up()
          .c('password')
          .t(password);
        conn._addSysHandler(
          (answer) => {
            if (answer.getAttribute('type') === 'result') {
              authenticate(mechanisms);
            } else {
              registration = XmppError.from(answer);
              conn.disconnect('registration failed');
            }
            return false;
          },
          null,
          'iq',
          null,
          iq.tree().getAttribute('id'),
        );
        conn.send(iq);
      };
    }
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (fn, value) => {
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          fn(value);
        }
      };
      // Strophe reports nothing when a WebSocket is closed cleanly before the
      // login is done: after a while, that is a failed connection too.
      const timer = setTimeout(() => {
        if (conn !== this.conn) return;
        settle(reject, new XmppError('connection-failed', 'timeout'));
        this.close();
      }, CONNECT_TIMEOUT_MS);
      conn.connect(jid, token || password, (status, condition) => {
        if (conn !== this.conn) return; // a connection we have since replaced
        if (status === Strophe.Status.CONNECTED) {
          this.jid = conn.jid;
          this._online();
          settle(resolve, this.jid);
        } else if (status === Strophe.Status.AUTHFAIL) {
          settle(reject, new XmppError('not-authorized', condition || ''));
        } else if (
          status === Strophe.Status.CONNFAIL ||
          status === Strophe.Status.ERROR ||
          status === Strophe.Status.CONNTIMEOUT
        ) {
          settle(reject, registration || new XmppError('connection-failed', condition || ''));
        } else if (status === Strophe.Status.DISCONNECTED) {
          settle(reject, registration || new XmppError('connection-failed', condition || ''));
        }
        this.emit('status', status, condition);
      });
    });
  }

  close() {
    if (this.conn) {
      const conn = this.conn;
      this.conn = null;
      try {
        conn.disconnect('bye');
      } catch {
        // already closed
      }
    }
  }

  get online() {
    return Boolean(this.conn && this.conn.authenticated && this.conn.connected);
  }

  _online() {
    const conn = this.conn;
    conn.addHandler((stanza) => this._message(stanza), null, 'message');
    // Roster pushes (the component puts a company into a customer's roster
    // on their first message): acknowledged, as RFC 6121 §2.1.6 asks.
    conn.addHandler(
      (iq) => {
        const from = iq.getAttribute('from');
        if (!from || bare(from) === bare(conn.jid)) {
          conn.send($iq({ type: 'result', id: iq.getAttribute('id') }));
        }
        return true;
      },
      'jabber:iq:roster',
      'iq',
      'set',
    );
    // Answer what a client must answer (RFC 6120 §8.2.3): Strophe answers
    // unknown IQs itself. Available presence: ejabberd delivers messages to
    // the bare JID (the company's answers) only to available resources, and
    // flushes what waited offline.
    conn.send($pres());
  }

  _message(stanza) {
    const type = stanza.getAttribute('type') || 'normal';
    const from = bare(stanza.getAttribute('from'));
    const id = stanza.getAttribute('id') || '';
    if (first(stanza, 'result', NS.MAM)) return true; // history: collected by its query
    if (type === 'error') {
      this.emit('bounce', { from, id, error: XmppError.from(stanza) });
      return true;
    }
    const status = child(stanza, 'status', NS.REQUEST);
    if (status && type === 'headline' && from === Strophe.getDomainFromJid(from)) {
      this.emit('requestStatus', {
        request: status.getAttribute('request') || '',
        targets: children(status, 'target', NS.REQUEST).map((el) => ({
          jid: el.getAttribute('jid') || '',
          status: el.getAttribute('status') || '',
        })),
      });
      return true;
    }
    const received = child(stanza, 'received', NS.RECEIPTS);
    if (received) this.emit('receipt', { from, id: received.getAttribute('id') });
    const displayed = child(stanza, 'displayed', NS.MARKERS);
    if (displayed) this.emit('displayed', { from, id: displayed.getAttribute('id') });
    const state = Array.from(stanza.children).find((c) => c.namespaceURI === NS.CHATSTATES);
    const body = child(stanza, 'body');
    if (state && !body) this.emit('chatstate', { from, state: state.localName });
    if (body) {
      const message = readMessage(stanza, this.jid);
      if (message) {
        this.emit('message', message);
        if (state) this.emit('chatstate', { from, state: state.localName });
        if (child(stanza, 'request', NS.RECEIPTS) && id) {
          this.conn.send(
            $msg({ to: stanza.getAttribute('from'), id: this.conn.getUniqueId('receipt') }).c(
              'received',
              { xmlns: NS.RECEIPTS, id },
            ),
          );
        }
      }
    }
    return true;
  }

  /** Send an IQ; resolves with the result stanza, rejects with an XmppError. */
  iq(stanza) {
    return new Promise((resolve, reject) => {
      if (!this.online) {
        reject(new XmppError('remote-server-timeout', 'offline'));
        return;
      }
      this.conn.sendIQ(stanza, resolve, (answer) => reject(XmppError.from(answer)), IQ_TIMEOUT_MS);
    });
  }

  // ---------------------------------------------------------------- service discovery

  /** disco#info of ``jid``: {identities: [{category, type, name}], features: Set, forms: {FORM_TYPE: values}}. */
  async discoInfo(jid) {
    const answer = await this.iq($iq({ type: 'get', to: jid }).c('query', { xmlns: NS.DISCO_INFO }));
    const query = first(answer, 'query', NS.DISCO_INFO);
    const forms = {};
    for (const x of children(query, 'x', NS.DATA)) {
      const values = fieldValues(x);
      forms[(values.FORM_TYPE || [''])[0]] = values;
    }
    return {
      identities: children(query, 'identity').map((i) => ({
        category: i.getAttribute('category') || '',
        type: i.getAttribute('type') || '',
        name: i.getAttribute('name') || '',
      })),
      features: new Set(children(query, 'feature').map((f) => f.getAttribute('var'))),
      forms,
    };
  }

  /**
   * The first item of the user's host (disco#items) whose disco#info passes
   * ``matches``: {jid, info}. Asked once per host and ``kind``, then kept
   * (unless it failed); rejects with "item-not-found" when no item passes.
   */
  discover(kind, matches) {
    const host = Strophe.getDomainFromJid(this.jid);
    const key = `${kind} ${host}`;
    if (!this.found.has(key)) {
      const finding = (async () => {
        const answer = await this.iq($iq({ type: 'get', to: host }).c('query', { xmlns: NS.DISCO_ITEMS }));
        const jids = children(first(answer, 'query', NS.DISCO_ITEMS), 'item').map((i) => i.getAttribute('jid'));
        const infos = await Promise.all(jids.map((jid) => this.discoInfo(jid).catch(() => null)));
        const index = infos.findIndex((info) => info && matches(info));
        if (index < 0) throw new XmppError('item-not-found', `no ${kind} on ${host}`);
        return { jid: jids[index], info: infos[index] };
      })();
      finding.catch(() => this.found.delete(key));
      this.found.set(key, finding);
    }
    return this.found.get(key);
  }

  /** orgchat's component domain: the one given, else the host's component that has the search. */
  async directory() {
    if (this.service) return this.service;
    const { jid } = await this.discover(
      'directory',
      (info) => info.features.has(NS.SEARCH) && info.identities.some((i) => i.category === 'component'),
    );
    return jid;
  }

  // ---------------------------------------------------------------- uploads

  /** The host's HTTP upload service: {jid, maxSize} (bytes; null when it says none). */
  async uploadService() {
    const { jid, info } = await this.discover('upload', (i) => i.features.has(NS.UPLOAD));
    const size = Number((info.forms[NS.UPLOAD]?.['max-file-size'] || [])[0]);
    return { jid, maxSize: size > 0 ? size : null };
  }

  /**
   * A slot for ``file`` on the upload service ``service``, under the name
   * ``filename``: {put, get, headers} (URLs, and the headers the PUT must
   * carry). Rejects with an XmppError when the service refuses (too big,
   * over a quota).
   */
  async uploadSlot(service, file, filename) {
    const answer = await this.iq(
      $iq({ type: 'get', to: service }).c('request', {
        xmlns: NS.UPLOAD,
        filename,
        size: String(file.size),
        'content-type': file.type,
      }),
    );
    const slot = first(answer, 'slot', NS.UPLOAD);
    const put = child(slot, 'put', NS.UPLOAD);
    const get = child(slot, 'get', NS.UPLOAD);
    if (!put || !get) throw new XmppError('undefined-condition', 'no slot in the answer');
    // The only headers a service may ask for; no line breaks in them.
    const headers = {};
    for (const header of children(put, 'header', NS.UPLOAD)) {
      const name = header.getAttribute('name') || '';
      if (/^(authorization|cookie|expires)$/i.test(name)) headers[name] = header.textContent.replace(/[\r\n]/g, '');
    }
    return { put: put.getAttribute('url'), get: get.getAttribute('url'), headers };
  }

  // ---------------------------------------------------------------- the directory

  /** The search form's choices (XEP-0055 IQ get): {categories, cities}. */
  async searchForm() {
    const answer = await this.iq($iq({ type: 'get', to: await this.directory() }).c('query', { xmlns: NS.SEARCH }));
    const form = first(answer, 'x', NS.DATA);
    const choices = (name) => fieldOptions(form, name).filter((o) => o.value !== '*');
    return { categories: choices('category'), cities: choices('city') };
  }

  /**
   * Search the directory (XEP-0055 with a data form, paged by XEP-0059).
   * Resolves with {companies: [{jid, name, category, city, openNow}], last, more}.
   */
  async search({ name = '', category = '', city = '', openNow = false, after = null, max = 20 }) {
    const iq = $iq({ type: 'set', to: await this.directory() })
      .c('query', { xmlns: NS.SEARCH })
      .c('x', { xmlns: NS.DATA, type: 'submit' })
      .c('field', { var: 'FORM_TYPE', type: 'hidden' })
      .c('value')
      .t(NS.SEARCH)
      .up()
      .up();
    const fields = { name: name.trim(), category: category || '*', city: city || '*' };
    for (const [key, value] of Object.entries(fields)) {
      iq.c('field', { var: key }).c('value').t(value).up().up();
    }
    iq.c('field', { var: 'open-now' }).c('value').t(openNow ? 'true' : 'false').up().up();
    iq.up().c('set', { xmlns: NS.RSM }).c('max').t(String(max)).up();
    if (after) iq.c('after').t(after).up();
    const answer = await this.iq(iq);
    const form = first(answer, 'x', NS.DATA);
    const companies = children(form, 'item').map((item) => {
      const v = fieldValues(item);
      return {
        jid: (v.jid || [''])[0],
        name: (v.name || [''])[0],
        category: (v.category || [''])[0],
        city: (v.city || [''])[0],
        openNow: ['true', '1'].includes((v['open-now'] || [''])[0]),
      };
    });
    const set = first(answer, 'set', NS.RSM);
    const last = textOf(set, 'last');
    const count = Number(textOf(set, 'count') || NaN);
    // With open-now the count is left out and a page may be short while more
    // follow: ask again after the last one while there was a full page.
    const more = Number.isFinite(count)
      ? Boolean(last) && (Number(child(set, 'first')?.getAttribute('index') || 0) + companies.length < count)
      : Boolean(last) && companies.length > 0;
    return { companies, last, more };
  }

  /** A company's vCard (vcard-temp): {name, street, locality, phone, email, url, category}. */
  async vcard(jid) {
    const answer = await this.iq($iq({ type: 'get', to: jid }).c('vCard', { xmlns: NS.VCARD }));
    const card = first(answer, 'vCard', NS.VCARD);
    const adr = child(card, 'ADR');
    const tel = child(card, 'TEL');
    return {
      name: textOf(card, 'FN'),
      street: textOf(adr, 'STREET'),
      locality: textOf(adr, 'LOCALITY'),
      phone: textOf(tel, 'NUMBER'),
      email: textOf(child(card, 'EMAIL'), 'USERID'),
      url: textOf(card, 'URL'),
      category: textOf(child(card, 'CATEGORIES'), 'KEYWORD'),
    };
  }

  /**
   * A company's disco#info: its name and orgchat's company information form
   * (XEP-0128): {name, category, city, timezone, hours, openNow, nextOpening,
   * firstResponse (seconds)}; fields the component leaves out are null.
   */
  async companyInfo(jid) {
    const info = await this.discoInfo(jid);
    const v = info.forms[NS.COMPANY] || {};
    const one = (key) => (v[key] && v[key].length ? v[key][0] : null);
    const seconds = Number(one('first-response'));
    return {
      name: info.identities.length ? info.identities[0].name : '',
      category: one('category'),
      city: one('city'),
      timezone: one('timezone'),
      hours: one('hours'),
      openNow: one('open-now') === null ? null : ['true', '1'].includes(one('open-now')),
      nextOpening: one('next-opening') ? new Date(one('next-opening')) : null,
      firstResponse: one('first-response') !== null && Number.isFinite(seconds) ? seconds : null,
    };
  }

  // ---------------------------------------------------------------- requests to several companies

  /** How many companies one request may name (the domain's disco#info, XEP-0128), or null. */
  async requestLimit() {
    const info = await this.discoInfo(await this.directory());
    const most = Number((info.forms[NS.REQUEST]?.['max-companies'] || [])[0]);
    return most > 0 ? most : null;
  }

  /**
   * Ask several companies one question: ``companies`` (JIDs) or ``search``
   * ({category, city, text, max}). Resolves with the new request (see
   * readRequest), whose refused companies say why; rejects with an XmppError.
   */
  async createRequest({ subject, body, companies = [], search = null, includeClosed = false }) {
    const iq = $iq({ type: 'set', to: await this.directory() })
      .c('create', { xmlns: NS.REQUEST, 'include-closed': includeClosed ? 'true' : 'false' })
      .c('subject')
      .t(subject)
      .up()
      .c('body')
      .t(body)
      .up();
    for (const jid of companies) iq.c('company', { jid }).up();
    if (search) {
      const attrs = {};
      for (const key of ['category', 'city', 'text']) if (search[key]) attrs[key] = search[key];
      if (search.max) attrs.max = String(search.max);
      iq.c('search', attrs).up();
    }
    return readRequest(first(await this.iq(iq), 'request', NS.REQUEST));
  }

  /** The person's newest requests, each in full (statuses, offers, declines): one round trip. */
  async requests(max = 20) {
    const answer = await this.iq(
      $iq({ type: 'get', to: await this.directory() })
        .c('requests', { xmlns: NS.REQUEST, full: 'true' })
        .c('set', { xmlns: NS.RSM })
        .c('max')
        .t(String(max)),
    );
    return children(first(answer, 'requests', NS.REQUEST), 'request', NS.REQUEST).map(readRequest);
  }

  /** One request in full. */
  async request(id) {
    const answer = await this.iq(
      $iq({ type: 'get', to: await this.directory() }).c('request', { xmlns: NS.REQUEST, id }),
    );
    return readRequest(first(answer, 'request', NS.REQUEST));
  }

  /** Close a request, accepting ``accept``'s offer (a company JID) if given: the request, closed. */
  async closeRequest(id, accept = null) {
    const attrs = { xmlns: NS.REQUEST, request: id };
    if (accept) attrs.accept = accept;
    const answer = await this.iq($iq({ type: 'set', to: await this.directory() }).c('close', attrs));
    return readRequest(first(answer, 'request', NS.REQUEST));
  }

  // ---------------------------------------------------------------- chat

  /**
   * Send a chat message with the id ``id`` (from ``messageId()``); ``link``:
   * the address of a file it carries (XEP-0066), as clients attach files.
   */
  send(to, text, id, link = '') {
    const message = $msg({ to, type: 'chat', id }).c('body').t(text).up();
    if (link) message.c('x', { xmlns: NS.OOB }).c('url').t(link).up().up();
    this.conn.send(
      message
        .c('request', { xmlns: NS.RECEIPTS })
        .up()
        .c('markable', { xmlns: NS.MARKERS })
        .up()
        .c('origin-id', { xmlns: NS.SID, id })
        .up()
        .c('active', { xmlns: NS.CHATSTATES }),
    );
  }

  /** XEP-0085: "composing", "paused", "active". */
  chatState(to, state) {
    if (this.online) this.conn.send($msg({ to, type: 'chat' }).c(state, { xmlns: NS.CHATSTATES }));
  }

  /** XEP-0333: the person has seen the message ``id`` from ``to``. */
  markDisplayed(to, id) {
    if (this.online) {
      this.conn.send($msg({ to, type: 'chat' }).c('displayed', { xmlns: NS.MARKERS, id }));
    }
  }

  /**
   * The last ``max`` messages with ``peer`` from the user's own archive
   * (XEP-0313 query to their own account, ``with`` = peer), oldest first.
   */
  history(peer, max = 50) {
    const queryid = this.conn.getUniqueId('mam');
    const iq = $iq({ type: 'set' })
      .c('query', { xmlns: NS.MAM, queryid })
      .c('x', { xmlns: NS.DATA, type: 'submit' })
      .c('field', { var: 'FORM_TYPE', type: 'hidden' })
      .c('value')
      .t(NS.MAM)
      .up()
      .up()
      .c('field', { var: 'with' })
      .c('value')
      .t(peer)
      .up()
      .up()
      .up()
      .c('set', { xmlns: NS.RSM })
      .c('max')
      .t(String(max))
      .up()
      .c('before');
    const messages = [];
    const handler = this.conn.addHandler(
      (stanza) => {
        const result = first(stanza, 'result', NS.MAM);
        if (!result || result.getAttribute('queryid') !== queryid) return true;
        // Only the user's own archive answers: from our bare JID, or no from.
        const from = stanza.getAttribute('from');
        if (from && bare(from) !== bare(this.jid)) return true;
        const forwarded = child(result, 'forwarded', NS.FORWARD);
        const inner = child(forwarded, 'message');
        const delay = child(forwarded, 'delay', NS.DELAY);
        const message = inner && readMessage(inner, this.jid, delay);
        if (message) messages.push(message);
        return true;
      },
      NS.MAM,
      'message',
    );
    return this.iq(iq).then(
      () => {
        this.conn.deleteHandler(handler);
        return messages;
      },
      (error) => {
        this.conn?.deleteHandler(handler);
        throw error;
      },
    );
  }
}

/** The request a company's answer is part of (its reply, offer or decline payload), or ''. */
function requestOf(stanza) {
  const payload = Array.from(stanza.children).find(
    (c) => c.namespaceURI === NS.REQUEST && ['reply', 'offer', 'decline'].includes(c.localName),
  );
  return (payload && payload.getAttribute('request')) || '';
}

/** A time attribute (XEP-0082) as a Date, or null. */
function stampOf(el, name) {
  const at = el.getAttribute(name);
  return at ? new Date(at) : null;
}

/**
 * A ``<request/>`` of urn:orgchat:request:0: {id, state, subject, body,
 * created, expires, closed, accepted, duplicate, targets}; each target
 * {jid, name, status, reason, opens, offer, declineReason}, ``offer``
 * {price (a number), amount (as sent), currency, availability, validUntil} or null.
 */
function readRequest(el) {
  if (!el) throw new XmppError('undefined-condition', 'no request in the answer');
  return {
    id: el.getAttribute('id') || '',
    state: el.getAttribute('state') || '',
    subject: textOf(el, 'subject'),
    body: textOf(el, 'body'),
    created: stampOf(el, 'created'),
    expires: stampOf(el, 'expires'),
    closed: stampOf(el, 'closed'),
    accepted: el.getAttribute('accepted') || '',
    duplicate: el.getAttribute('duplicate') === 'true',
    targets: children(el, 'target', NS.REQUEST).map((target) => {
      const offer = first(child(target, 'offer', NS.REQUEST), 'x', NS.DATA);
      const v = offer ? fieldValues(offer) : null;
      const one = (key) => (v[key] || [''])[0];
      return {
        jid: target.getAttribute('jid') || '',
        name: target.getAttribute('name') || '',
        status: target.getAttribute('status') || '',
        reason: target.getAttribute('reason') || '',
        opens: target.getAttribute('opens') || '',
        offer: v && {
          price: Number(one('price')),
          amount: one('price'),
          currency: one('currency'),
          availability: one('availability'),
          validUntil: one('valid-until'),
        },
        declineReason: textOf(target, 'reason'),
      };
    }),
  };
}

/** The moment an element's ``at`` names (an ISO 8601 instant), or null. */
function instant(el) {
  const at = el && new Date(el.getAttribute('at') || '');
  return at && !Number.isNaN(at.getTime()) ? at : null;
}

/**
 * A chat message as the page keeps it: {id, from, to, peer, mine, text, link,
 * opens, markable, time}. ``peer`` is the other side; ``mine`` says whether the
 * user sent it; ``link`` is the address of a file it carries (XEP-0066), or '';
 * ``opens``, on a closed company's away reply, when it opens (a Date), or null;
 * ``request``: the id of the request to several companies it answers, or ''.
 */
function readMessage(stanza, ownJid, outerDelay = null) {
  const body = child(stanza, 'body');
  if (!body) return null;
  const from = bare(stanza.getAttribute('from') || ownJid);
  const to = bare(stanza.getAttribute('to') || ownJid);
  const mine = from === bare(ownJid);
  const delay = outerDelay || child(stanza, 'delay', NS.DELAY);
  const stamp = delay && delay.getAttribute('stamp');
  const originId = child(stanza, 'origin-id', NS.SID);
  return {
    id: stanza.getAttribute('id') || (originId && originId.getAttribute('id')) || '',
    from,
    to,
    peer: mine ? to : from,
    mine,
    text: body.textContent,
    link: textOf(child(stanza, 'x', NS.OOB), 'url'),
    opens: instant(child(stanza, 'opens', NS.AWAY)),
    request: requestOf(stanza),
    markable: Boolean(child(stanza, 'markable', NS.MARKERS)),
    time: stamp ? new Date(stamp) : new Date(),
  };
}
