// The directory page: search, company cards, the chat with a company,
// requests to several companies (ask, follow, compare offers, accept), and
// notifications off the page (web push, an email address, email links).
// State lives here; what goes over the wire is xmpp.js; texts are i18n.js.
// Everything received is put on the page with textContent, never as HTML.

import { Session, Status, XmppError, bare, messageId, newGuest } from './xmpp.js';
import { LANGUAGES, categoryName, hoursText, lang, plural, setLang, t } from './i18n.js';
import {
  PushError,
  confirmEmail,
  forgetEmailLink,
  notifySettings,
  pushSupported,
  readEmailLink,
  setEmail,
  turnOffPush,
  turnOnPush,
} from './push.js';

// ------------------------------------------------------------------ configuration

// The development stack's host; orgchat's component domain is found by
// service discovery on it. The query string overrides both (the integration
// tests use their own host, ?xmpp=test.localhost, whose component is biz.test.localhost).
const params = new URLSearchParams(location.search);
const SERVED = location.protocol === 'http:' || location.protocol === 'https:';
const CONFIG = {
  xmppHost: params.get('xmpp') || 'localhost',
  service: params.get('service') || null,
  // Same origin as the page, which ejabberd serves beside /ws and /bosh.
  websocket:
    params.get('ws') ||
    (SERVED
      ? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`
      : 'ws://127.0.0.1:5280/ws'),
  bosh: params.get('bosh') || (SERVED ? `${location.origin}/bosh` : 'http://127.0.0.1:5280/bosh'),
};
const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;
const RESULTS_PAGE = 20;
const DETAILS_TTL_MS = 60_000;

// ------------------------------------------------------------------ identity

// A guest's account is kept in localStorage (the same identity after a reload
// or a restart of the browser); a person's own account in localStorage only
// when they ask to stay logged in, otherwise for this tab (sessionStorage).
// The login of an email's link (a guest's address and a token, never a
// password) is kept for this tab only, and comes first while it works.
const KEYS = {
  guest: `orgchat:${CONFIG.xmppHost}:guest`,
  account: `orgchat:${CONFIG.xmppHost}:account`,
  link: `orgchat:${CONFIG.xmppHost}:link`,
  notify: 'orgchat:notify',
  push: `orgchat:${CONFIG.xmppHost}:push`, // the account this browser's pushes are for
};

/** A stored login ({jid, password} or, with ``secret`` "token", {jid, token}), or null. */
function readStored(storage, key, secret = 'password') {
  try {
    const value = JSON.parse(storage.getItem(key) || 'null');
    return value && value.jid && value[secret] ? value : null;
  } catch {
    return null;
  }
}

function storedAccount() {
  return readStored(sessionStorage, KEYS.account) || readStored(localStorage, KEYS.account);
}

function forgetAccount() {
  sessionStorage.removeItem(KEYS.account);
  localStorage.removeItem(KEYS.account);
}

/**
 * An email's link to a guest's chat (``#jid=…&token=…``, docs/protocol.md): its
 * login is kept for this tab, unless this browser is that guest already (its
 * password is then at hand), and leaves the address bar and the history at once.
 * The chat itself is the link's ``company=``, opened once online.
 */
function takeEmailLink() {
  const link = readEmailLink();
  if (!link || !link.token) return;
  const guest = readStored(localStorage, KEYS.guest);
  if (!guest || bare(guest.jid) !== bare(link.jid)) {
    sessionStorage.setItem(KEYS.link, JSON.stringify({ jid: link.jid, token: link.token }));
  }
  forgetEmailLink();
}

// ------------------------------------------------------------------ state

const session = new Session({ endpoints: [CONFIG.websocket, CONFIG.bosh], service: CONFIG.service });
const state = {
  identity: null, // {jid, password, guest} or, from an email's link, {jid, token, guest}
  notice: '', // a text key said under the status until the next login: the email link's
  online: false,
  everOnline: false,
  statusKey: 'connecting',
  choices: null, // {categories, cities}
  results: [], // [{jid, name, category, city, openNow}]
  resultsState: 'idle', // idle | searching | done | failed
  more: false,
  last: null,
  searchSeq: 0,
  details: new Map(), // jid -> {vcard, info, missing, failed, at}
  chats: new Map(), // jid -> {messages: Map(key -> message), loaded, historyFailed, typing}
  open: null, // the company JID whose chat is open
  limit: null, // how many companies one request may name (the component says)
  picked: new Set(), // JIDs of the cards ticked for a request
  asking: false,
  askError: '',
  requests: new Map(), // request id -> the request (xmpp.js readRequest), newest first
  refused: new Map(), // request id -> its companies that were not sent it (kept from its creation)
  request: null, // the id of the request on screen
  requestError: '',
  priceOrder: null, // ascending | descending | null: the offers' order
  settings: null, // the component's notification settings (push.js parseSettings)
  settingsError: '', // a text key: the settings could not be read
  pushBusy: false,
  pushNote: '', // a text key: what became of the last change of the push box
  emailError: '', // a text key
  emailChanging: false, // the address form shown again under a confirmed address
  emailPending: '', // the address a code was sent to (the settings show the confirmed one)
};

const $ = (id) => document.getElementById(id);

/** A DOM element with attributes and children (strings become text nodes). */
function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

// ------------------------------------------------------------------ connection

let retryDelay = 1000;
let retryTimer = null;

function setStatus(key, params = {}) {
  state.statusKey = key;
  state.statusParams = params;
  renderStatus();
}

function setNotice(key) {
  state.notice = key;
  renderStatus();
}

function scheduleRetry() {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, retryDelay);
  retryDelay = Math.min(retryDelay * 2, 30_000);
}

/** Log in with an email link's login, or the stored account, or as the stored guest,
 * or as a new guest. */
async function connect() {
  clearTimeout(retryTimer);
  const linked = readStored(sessionStorage, KEYS.link, 'token');
  const account = storedAccount();
  let identity = linked
    ? { ...linked, guest: true }
    : account
      ? { ...account, guest: false }
      : readStored(localStorage, KEYS.guest);
  let register = false;
  if (!identity) {
    identity = newGuest(CONFIG.xmppHost);
    register = true;
    setStatus('creatingGuest');
  } else {
    setStatus(state.everOnline ? 'reconnecting' : 'connecting');
  }
  try {
    await session.connect(identity, { register });
  } catch (error) {
    await connectFailed(identity, register, error);
    return;
  }
  if (identity.guest && identity.password) localStorage.setItem(KEYS.guest, JSON.stringify(identity));
  if (identity.token) setNotice('linkSession');
  state.identity = identity;
  retryDelay = 1000;
  await online();
}

async function connectFailed(identity, registering, error) {
  const condition = error instanceof XmppError ? error.condition : 'connection-failed';
  if (condition === 'not-authorized' && identity.token) {
    // The email link's login has expired (or was revoked): this browser's own guest.
    sessionStorage.removeItem(KEYS.link);
    setNotice('linkExpired');
    connect();
  } else if (condition === 'not-authorized' && !identity.guest) {
    // A remembered account whose password changed: back to the guest.
    forgetAccount();
    setStatus('wrongPassword');
    connect();
  } else if (condition === 'not-authorized' && identity.guest && !registering) {
    // The guest account is gone (expired guests are removed): a new guest.
    localStorage.removeItem(KEYS.guest);
    connect();
  } else if (registering && condition === 'conflict') {
    connect(); // the random name was taken: another one
  } else if (registering && condition !== 'connection-failed') {
    // resource-constraint / not-acceptable: ejabberd's limit on registrations
    // from one address (registration_timeout).
    setStatus(condition === 'resource-constraint' ? 'registrationRefused' : 'registrationFailed');
    retryDelay = Math.max(retryDelay, 30_000);
    scheduleRetry();
  } else {
    setStatus(state.everOnline ? 'reconnecting' : 'connectionFailed');
    scheduleRetry();
  }
}

session.on('status', (status) => {
  if (status === Status.DISCONNECTED && state.online) {
    state.online = false;
    setStatus('reconnecting');
    renderChat();
    renderSettings();
    scheduleRetry();
  }
});

async function online() {
  state.online = true;
  state.everOnline = true;
  setStatus('');
  renderIdentity();
  renderSettings();
  renderUnread();
  sendQueued();
  if (!state.choices) {
    try {
      state.choices = await session.searchForm();
      renderChoices();
    } catch {
      // the search still works without the lists
    }
  }
  if (state.resultsState !== 'done') search();
  loadLimit();
  loadRequests();
  const slug = params.get('company');
  // After a reconnection, what was said meanwhile is in the archive.
  for (const chat of state.chats.values()) chat.loaded = false;
  if (state.open) {
    openChat(state.open);
  } else if (state.request || params.get('request')) {
    openRequest(state.request || params.get('request'));
  } else if (slug !== null) {
    try {
      openChat(SLUG.test(slug) ? `${slug}@${await session.directory()}` : '');
    } catch {
      // no directory on this host: the search says it is not available
    }
  }
}

// ------------------------------------------------------------------ login and logout

function openLogin() {
  $('login-error').textContent = '';
  $('login-dialog').showModal();
  $('login-jid').focus();
}

async function logIn(event) {
  event.preventDefault();
  const jid = $('login-jid').value.trim();
  const password = $('login-password').value;
  if (!jid.includes('@')) {
    $('login-error').textContent = t('wrongPassword');
    return;
  }
  const remember = $('login-remember').checked;
  resetChats();
  state.online = false;
  setStatus('connecting');
  try {
    await session.connect({ jid, password });
  } catch (error) {
    $('login-error').textContent =
      error.condition === 'not-authorized' ? t('wrongPassword') : t('connectionFailed');
    connect(); // back to the guest meanwhile
    return;
  }
  forgetAccount();
  sessionStorage.removeItem(KEYS.link);
  setNotice('');
  (remember ? localStorage : sessionStorage).setItem(
    KEYS.account,
    JSON.stringify({ jid: bare(jid), password }),
  );
  $('login-password').value = '';
  $('login-dialog').close();
  state.identity = { jid: bare(jid), password, guest: false };
  retryDelay = 1000;
  await online();
}

function logOut() {
  forgetAccount();
  resetChats();
  state.online = false;
  connect();
}

function resetChats() {
  state.settings = null;
  state.emailPending = '';
  state.chats.clear();
  state.requests.clear();
  state.refused.clear();
  renderChat();
  renderMyRequests();
  closeRequest();
}

// ------------------------------------------------------------------ search

let typingTimer = null;

function searchCriteria() {
  return {
    name: $('q').value,
    category: $('category').value,
    city: $('city').value,
    openNow: $('open-now').checked,
  };
}

async function search({ more = false } = {}) {
  if (!session.online) return;
  const seq = ++state.searchSeq;
  if (!more) {
    state.resultsState = 'searching';
    renderResultsStatus();
  }
  try {
    const page = await session.search({
      ...searchCriteria(),
      after: more ? state.last : null,
      max: RESULTS_PAGE,
    });
    if (seq !== state.searchSeq) return; // a newer search has started
    state.results = more ? state.results.concat(page.companies) : page.companies;
    state.more = page.more;
    state.last = page.last;
    state.resultsState = 'done';
  } catch {
    if (seq !== state.searchSeq) return;
    state.resultsState = 'failed';
    if (!more) state.results = [];
  }
  renderResults();
  for (const company of state.results) loadDetails(company.jid);
}

/** The company's vCard and information form, fetched once a minute at most. */
async function loadDetails(jid, { force = false } = {}) {
  const known = state.details.get(jid);
  if (known && !force && (known.pending || Date.now() - known.at < DETAILS_TTL_MS)) {
    return known.pending || known;
  }
  const entry = { ...(known || {}), at: Date.now() };
  entry.pending = (async () => {
    const [vcard, info] = await Promise.allSettled([session.vcard(jid), session.companyInfo(jid)]);
    const missing = [vcard, info].some(
      (r) => r.status === 'rejected' && r.reason?.condition === 'item-not-found',
    );
    const failed = !missing && [vcard, info].every((r) => r.status === 'rejected');
    const done = {
      vcard: vcard.status === 'fulfilled' ? vcard.value : known?.vcard || null,
      info: info.status === 'fulfilled' ? info.value : known?.info || null,
      missing,
      failed,
      at: failed ? 0 : Date.now(),
      pending: null,
    };
    state.details.set(jid, done);
    renderCard(jid);
    renderUnread();
    if (state.open === jid) renderChat();
    if (state.request) renderRequest();
    return done;
  })();
  state.details.set(jid, entry);
  return entry.pending;
}

// ------------------------------------------------------------------ rendering: header

function renderStatus() {
  const key = state.statusKey;
  $('status').textContent = key ? t(key, state.statusParams || {}) : '';
  $('status').hidden = !key;
  $('notice').textContent = state.notice ? t(state.notice) : '';
  $('notice').hidden = !state.notice;
}

function renderIdentity() {
  const who = state.identity;
  const guest = !who || who.guest;
  $('identity').textContent = !who
    ? ''
    : guest
      ? t('guestAs', { name: who.jid.split('@')[0] })
      : t('loggedInAs', { jid: who.jid });
  $('login-open').hidden = !who || !guest;
  $('logout').hidden = !who || guest;
  $('settings-open').hidden = !who;
}

function renderTexts() {
  document.documentElement.lang = lang();
  for (const el of document.querySelectorAll('[data-text]')) el.textContent = t(el.dataset.text);
  for (const el of document.querySelectorAll('[data-label]')) {
    el.setAttribute('aria-label', t(el.dataset.label));
    el.title = t(el.dataset.label);
  }
  for (const el of document.querySelectorAll('[data-placeholder]')) {
    el.setAttribute('placeholder', t(el.dataset.placeholder));
  }
  $('q').setAttribute('placeholder', t('searchPlaceholder'));
  const other = lang() === 'ru' ? 'en' : 'ru';
  const button = $('lang-switch');
  button.textContent = LANGUAGES[other];
  button.setAttribute('lang', other);
  button.dataset.lang = other;
}

function renderAll() {
  renderTexts();
  renderAsk();
  renderMyRequests();
  renderRequest();
  renderStatus();
  renderIdentity();
  renderNotify();
  renderSettings();
  renderUnread();
  renderChoices();
  renderResults();
  renderChat();
}

function renderChoices() {
  if (!state.choices) return;
  for (const [id, list, name] of [
    ['category', state.choices.categories, categoryName],
    ['city', state.choices.cities, (v) => v],
  ]) {
    const select = $(id);
    const chosen = select.value;
    select.replaceChildren(
      h('option', { value: '' }, t(id === 'category' ? 'anyCategory' : 'anyCity')),
      ...list.map((o) => h('option', { value: o.value }, name(o.value))),
    );
    select.value = list.some((o) => o.value === chosen) ? chosen : '';
  }
}

// ------------------------------------------------------------------ rendering: cards

function renderResultsStatus() {
  const key = {
    searching: 'searching',
    failed: 'searchFailed',
    done: state.results.length ? '' : 'noResults',
    idle: '',
  }[state.resultsState];
  $('results-status').textContent = key ? t(key) : '';
}

function renderResults() {
  renderResultsStatus();
  $('results').replaceChildren(...state.results.map((c) => h('li', {}, card(c))));
  $('more').hidden = !(state.more && state.resultsState === 'done');
}

function renderCard(jid) {
  const company = state.results.find((c) => c.jid === jid);
  const el = document.querySelector(`article[data-jid="${CSS.escape(jid)}"]`);
  if (company && el) el.replaceWith(card(company));
}

function cardId(jid) {
  return `card-${jid.split('@')[0]}`;
}

/** One company's card: what the search said, completed by its vCard and information. */
function card(company) {
  const d = state.details.get(company.jid) || {};
  const vcard = d.vcard || {};
  const info = d.info || {};
  const name = vcard.name || info.name || company.name;
  const category = company.category || info.category || vcard.category;
  const city = company.city || info.city || vcard.locality;
  const titleId = cardId(company.jid);
  return h(
    'article',
    { class: 'card', 'data-jid': company.jid, 'aria-labelledby': titleId },
    h('h3', { id: titleId }, name),
    unreadBadge(company.jid),
    h('p', { class: 'kind' }, [category && categoryName(category), city].filter(Boolean).join(' · ')),
    companyFacts(company, d),
    h(
      'div',
      { class: 'card-actions' },
      h(
        'button',
        { type: 'button', class: 'message', onclick: () => openChat(company.jid) },
        t('message'),
      ),
      h(
        'label',
        { class: 'check pick' },
        h('input', {
          type: 'checkbox',
          checked: state.picked.has(company.jid),
          disabled: !state.picked.has(company.jid) && atLimit(),
          onchange: (event) => pick(company.jid, event.target.checked),
        }),
        h('span', {}, t('pick')),
      ),
    ),
  );
}

/** Address, phone, hours, open now / opens at, first response: the parts a card and a chat show. */
function companyFacts(company, details) {
  const vcard = details.vcard || {};
  const info = details.info || {};
  const openNow = info.openNow ?? company?.openNow ?? null;
  // The city alone is already in the card's first line.
  const address = vcard.street ? [vcard.street, vcard.locality].filter(Boolean).join(', ') : '';
  const facts = h('div', { class: 'facts' });
  if (openNow !== null) {
    const opening = !openNow && info.nextOpening ? opensAt(info.nextOpening, info.timezone) : '';
    facts.append(
      h(
        'p',
        { class: openNow ? 'open-state open' : 'open-state closed' },
        openNow ? t('openNow') : [t('closed'), opening].filter(Boolean).join(' · '),
      ),
    );
  }
  if (info.firstResponse !== null && info.firstResponse !== undefined) {
    facts.append(h('p', { class: 'answers' }, t('answersWithin', { duration: duration(info.firstResponse) })));
  }
  if (address) facts.append(h('p', { class: 'address' }, address));
  if (vcard.phone) {
    facts.append(
      h(
        'p',
        { class: 'phone' },
        h('span', { class: 'visually-hidden' }, `${t('phone')}: `),
        h('a', { href: `tel:${vcard.phone.replace(/[^+\d]/g, '')}` }, vcard.phone),
      ),
    );
  }
  if (info.hours) {
    facts.append(
      h('p', { class: 'hours' }, h('span', { class: 'visually-hidden' }, `${t('hours')}: `), hoursText(info.hours)),
    );
  }
  return facts;
}

/** "Opens tomorrow at 09:00 GMT+7": the next opening in the company's time zone. */
function opensAt(when, timeZone) {
  const zone = timeZone || undefined;
  let time;
  let dayKey;
  let todayKey;
  let tomorrowKey;
  let day;
  try {
    time = new Intl.DateTimeFormat(lang(), {
      hour: '2-digit',
      minute: '2-digit',
      timeZone: zone,
      timeZoneName: 'shortOffset',
    }).format(when);
    const key = new Intl.DateTimeFormat('en-CA', { timeZone: zone });
    dayKey = key.format(when);
    todayKey = key.format(new Date());
    tomorrowKey = key.format(new Date(Date.now() + 86_400_000));
    day = new Intl.DateTimeFormat(lang(), { weekday: 'long', day: 'numeric', month: 'long', timeZone: zone }).format(when);
  } catch {
    return '';
  }
  if (dayKey === todayKey) return t('opensToday', { time });
  if (dayKey === tomorrowKey) return t('opensTomorrow', { time });
  return t('opensOn', { day, time });
}

/** A median first response in seconds, as a person says it. */
function duration(seconds) {
  if (seconds <= 60) return t('aMinute');
  if (seconds < 3600) return plural('minutes', Math.ceil(seconds / 60));
  return plural('hoursN', Math.ceil(seconds / 3600));
}

// ------------------------------------------------------------------ chat

function chatOf(jid) {
  if (!state.chats.has(jid)) {
    state.chats.set(jid, { messages: new Map(), loaded: false, historyFailed: false, typing: false });
  }
  return state.chats.get(jid);
}

function messageKey(message) {
  // "me": a message written offline has no sender address yet.
  return `${message.mine ? 'me' : message.from}|${message.id || message.time.getTime() + message.text}`;
}

/** Add a message to its chat; false if the chat already had it. */
function addMessage(message) {
  const chat = chatOf(message.peer);
  const key = messageKey(message);
  const known = chat.messages.get(key);
  // A message seen live and again in the archive: keep the first, with its status.
  if (!known) chat.messages.set(key, message);
  else if (!known.status && message.status) known.status = message.status;
  if (!message.mine) chat.typing = false;
  if (state.open === message.peer) renderLog();
  return !known;
}

function companyName(jid) {
  const details = state.details.get(jid) || {};
  const known = state.results.find((c) => c.jid === jid);
  return details.vcard?.name || details.info?.name || known?.name || jid.split('@')[0];
}

function openChat(jid) {
  state.open = jid;
  const slug = jid ? jid.split('@')[0] : params.get('company') || '';
  const url = new URL(location.href);
  url.searchParams.set('company', slug);
  window.history.replaceState(null, '', url);
  document.body.classList.add('chatting');
  $('chat').hidden = false;
  renderRequest(); // a request on screen waits behind the chat
  if (jid) {
    loadDetails(jid);
    if (session.online && !chatOf(jid).loaded) loadHistory(jid);
  }
  renderChat();
  if (!matchMedia('(pointer: coarse)').matches) $('text').focus();
}

function closeChat() {
  state.open = null;
  params.delete('company'); // not to be opened again on reconnection
  const url = new URL(location.href);
  url.searchParams.delete('company');
  window.history.replaceState(null, '', url);
  document.body.classList.remove('chatting');
  $('chat').hidden = true;
  renderRequest(); // back to the request this chat was opened from, if any
}

async function loadHistory(jid) {
  const chat = chatOf(jid);
  chat.loading = true;
  renderChat();
  try {
    const messages = await session.history(jid);
    // What is in the user's archive was archived by the company: delivered.
    for (const m of messages) addMessage({ ...m, status: m.mine ? 'delivered' : null });
    chat.loaded = true;
    chat.historyFailed = false;
  } catch {
    chat.historyFailed = true;
  }
  chat.loading = false;
  renderChat();
}

function renderChat() {
  const jid = state.open;
  $('chat').hidden = jid === null;
  if (jid === null) return;
  const details = (jid && state.details.get(jid)) || {};
  const known = state.results.find((c) => c.jid === jid);
  // A deep link whose company cannot exist is named as the link spells it.
  const name = jid ? companyName(jid) : params.get('company') || '';
  $('chat-title').textContent = t('chatWith', { name });
  const missing = !jid || details.missing;
  $('chat-card').replaceChildren(missing ? '' : companyFacts(known || null, details));
  const chat = jid ? chatOf(jid) : null;
  let status = '';
  if (missing) status = t('notFound');
  else if (details.failed) status = t('unavailable');
  else if (!state.online) status = t('offlineQueued');
  else if (chat.loading && !chat.messages.size) status = t('loadingHistory');
  else if (chat.historyFailed) status = t('historyFailed');
  $('chat-status').textContent = status;
  $('chat-status').hidden = !status;
  $('compose').hidden = Boolean(missing);
  const upload = chat?.upload;
  $('upload-status').textContent = upload ? t(upload.key, upload.params) : '';
  $('upload-status').classList.toggle('error', Boolean(upload && !upload.busy));
  $('attach').disabled = !state.online || Boolean(upload?.busy);
  renderLog();
}

function renderLog() {
  const jid = state.open;
  if (!jid) {
    $('log').replaceChildren();
    $('typing').textContent = '';
    return;
  }
  const chat = chatOf(jid);
  const messages = [...chat.messages.values()].sort((a, b) => a.time - b.time);
  const details = state.details.get(jid) || {};
  if (details.missing && !messages.length) {
    $('log').replaceChildren();
    $('typing').textContent = '';
    return;
  }
  const name = companyName(jid);
  const clock = new Intl.DateTimeFormat(lang(), { hour: '2-digit', minute: '2-digit' });
  $('log').replaceChildren(
    ...(messages.length || chat.loading
      ? messages.map((m) =>
          h(
            'li',
            { class: m.mine ? 'msg mine' : 'msg theirs', 'data-id': m.id },
            h('span', { class: 'visually-hidden' }, `${m.mine ? t('you') : name}: `),
            content(m),
            h(
              'span',
              { class: 'meta' },
              clock.format(m.time),
              m.mine && m.status ? h('span', { class: `state ${m.status}` }, ` · ${t(statusText(m.status))}`) : null,
            ),
            m.error ? h('span', { class: 'error' }, m.error) : null,
          ),
        )
      : [h('li', { class: 'empty' }, t('emptyChat'))]),
  );
  $('typing').textContent = chat.typing ? t('typing', { name }) : '';
  const log = $('log');
  log.scrollTop = log.scrollHeight;
  markSeen(jid, messages);
}

function statusText(status) {
  return { queued: 'queued', sending: 'sending', delivered: 'delivered', read: 'read', failed: 'notDelivered' }[
    status
  ];
}

/** The chat is in view: its answers are seen, and the company is told so. */
function markSeen(jid, messages) {
  if (document.visibilityState !== 'visible') return;
  clearUnread(jid);
  if (!session.online) return;
  const chat = chatOf(jid);
  const last = [...messages].reverse().find((m) => !m.mine && m.markable && m.id);
  if (last && chat.seen !== last.id) {
    chat.seen = last.id;
    session.markDisplayed(jid, last.id);
  }
}

/** A message's text, or its photo (with the text, if that is more than the photo's address). */
function content(message) {
  const photo = photoOf(message);
  if (!photo) return [h('p', { class: 'text' }, message.text), opening(message)];
  const img = h('img', { class: 'photo', alt: t('photo') });
  img.referrerPolicy = 'no-referrer';
  img.addEventListener('load', () => {
    $('log').scrollTop = $('log').scrollHeight;
  });
  img.src = photo;
  return [
    h('a', { href: photo, target: '_blank', rel: 'noopener noreferrer' }, img),
    message.text.trim() !== photo ? h('p', { class: 'text' }, message.text) : null,
  ];
}

/** When a closed company opens, in the reader's own time (its away reply says it in the company's). */
function opening(message) {
  if (!message.opens) return null;
  const when = new Intl.DateTimeFormat(lang(), {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    hour: '2-digit',
    minute: '2-digit',
  });
  return h('p', { class: 'opens' }, t('opensYourTime', { time: when.format(message.opens) }));
}

/**
 * The address of the photo a message carries, or null: its link (as clients
 * attach files) or else its whole text (the archive keeps only the text), if
 * that is an image where the upload service keeps them, beside this page.
 */
function photoOf(message) {
  const address = (message.link || message.text).trim();
  let url;
  try {
    url = new URL(address);
  } catch {
    return null;
  }
  const image = /\.(jpe?g|png|webp|gif)$/i.test(url.pathname);
  return SERVED && url.origin === location.origin && image && !/\s/.test(address) ? url.href : null;
}

let composing = null;

function sendMessage(event) {
  event.preventDefault();
  const jid = state.open;
  const box = $('text');
  const text = box.value.trim();
  if (!jid || !text) return;
  clearTimeout(composing);
  composing = null;
  post(jid, text);
  box.value = '';
  box.focus();
}

/** Send a message (offline, it waits in the chat, marked so, until the connection is back). */
function post(jid, text, link = '') {
  const message = {
    id: messageId(),
    from: bare(session.jid),
    to: jid,
    peer: jid,
    mine: true,
    text,
    link,
    time: new Date(),
    status: session.online ? 'sending' : 'queued',
  };
  addMessage(message);
  if (session.online) session.send(jid, text, message.id, link);
}

/** What was written offline goes out, in the order it was written. */
function sendQueued() {
  for (const chat of state.chats.values()) {
    for (const message of chat.messages.values()) {
      if (message.status !== 'queued') continue;
      session.send(message.peer, message.text, message.id, message.link);
      message.status = 'sending';
    }
  }
  renderChat();
}

function onTyping() {
  const jid = state.open;
  if (!jid || !session.online) return;
  if (composing === null) session.chatState(jid, 'composing');
  clearTimeout(composing);
  composing = setTimeout(() => {
    composing = null;
    session.chatState(jid, 'paused');
  }, 5000);
}

function findMine(peer, id) {
  const chat = state.chats.get(peer);
  if (!chat || !id) return null;
  return [...chat.messages.values()].find((m) => m.mine && m.id === id) || null;
}

const RANK = { queued: 0, sending: 0, failed: 0, delivered: 1, read: 2 };

function setMineStatus(peer, id, status, error = '') {
  const message = findMine(peer, id);
  if (!message || RANK[status] < RANK[message.status || 'sending']) return;
  message.status = status;
  message.error = error;
  if (state.open === peer) renderLog();
}

session.on('message', (message) => {
  if (message.request) refreshRequest(message.request);
  if (!addMessage(message) || message.mine || seeing(message.peer)) return;
  countUnread(message);
  if (document.visibilityState !== 'visible') notify(message);
});
session.on('receipt', ({ from, id }) => setMineStatus(from, id, 'delivered'));
session.on('displayed', ({ from, id }) => setMineStatus(from, id, 'read'));
session.on('bounce', ({ from, id, error }) => {
  const message = findMine(from, id);
  if (!message) return;
  message.status = 'failed';
  if (error.condition === 'item-not-found') {
    // The company left the directory since its chat was opened: the chat says so.
    message.error = t('notFound');
    loadDetails(from, { force: true });
  } else {
    message.error = t(
      ['service-unavailable', 'remote-server-not-found'].includes(error.condition) ? 'unavailable' : 'notDelivered',
    );
  }
  if (state.open === from) renderLog();
});
session.on('chatstate', ({ from, state: chatState }) => {
  const chat = state.chats.get(from);
  if (!chat) return;
  chat.typing = chatState === 'composing';
  if (state.open === from) renderLog();
});

session.on('requestStatus', ({ request }) => refreshRequest(request));

// ------------------------------------------------------------------ requests to several companies

// One question to several companies (ticked cards, or what the search
// finds), each answering in its own chat; the request's screen follows every
// company's status live, compares the offers and accepts one. The protocol is
// urn:orgchat:request:0 (docs/protocol.md); the list, in full, is asked for
// on every (re)connection, so the screen survives a reload.
const REQUESTS_LISTED = 20;

function atLimit() {
  return state.limit !== null && state.picked.size >= state.limit;
}

function pick(jid, on) {
  if (on) state.picked.add(jid);
  else state.picked.delete(jid);
  state.askError = '';
  // In place, not re-rendered: the checkbox keeps the focus.
  for (const input of document.querySelectorAll('article.card .pick input')) {
    const card = input.closest('article');
    input.disabled = !state.picked.has(card.dataset.jid) && atLimit();
  }
  renderAsk();
}

function askWhom() {
  return document.querySelector('input[name="ask-whom"]:checked').value;
}

function renderAsk() {
  const max = state.limit ?? '—';
  $('ask-limit').textContent = state.limit === null ? '' : t('askLimit', { max });
  $('ask-picked-label').textContent = t('askPicked', { n: state.picked.size, max });
  $('ask-search-label').textContent = t('askSearch');
  const bySearch = askWhom() === 'search';
  $('ask-send').textContent = state.asking
    ? t('askSending')
    : bySearch
      ? t('askSendSearch')
      : plural('askSend', state.picked.size);
  $('ask-send').disabled = state.asking || !state.online;
  // "Open now" in the search means open now: closed companies are not asked.
  const openOnly = $('open-now').checked;
  $('ask-closed').disabled = openOnly;
  if (openOnly) $('ask-closed').checked = false;
  $('ask-error').textContent = state.askError;
}

async function loadLimit() {
  try {
    state.limit = await session.requestLimit();
  } catch {
    state.limit = null; // the component says nothing: it refuses too many itself
  }
  renderAsk();
}

async function sendAsk(event) {
  event.preventDefault();
  const subject = $('ask-subject').value.trim();
  const body = $('ask-body').value.trim();
  const bySearch = askWhom() === 'search';
  const criteria = searchCriteria();
  let problem = '';
  if (!subject || !body) problem = t('askNeedText');
  else if (!bySearch && !state.picked.size) problem = t('askNonePicked');
  else if (!bySearch && state.limit !== null && state.picked.size > state.limit) {
    problem = t('askTooMany', { max: state.limit });
  }
  else if (bySearch && !criteria.category && !criteria.city && !criteria.name.trim()) problem = t('askNeedCriteria');
  state.askError = problem;
  if (problem) {
    renderAsk();
    return;
  }
  state.asking = true;
  renderAsk();
  try {
    const request = await session.createRequest({
      subject,
      body,
      companies: bySearch ? [] : [...state.picked],
      search: bySearch
        ? { category: criteria.category, city: criteria.city, text: criteria.name.trim(), max: state.limit }
        : null,
      includeClosed: $('ask-closed').checked,
    });
    state.refused.set(
      request.id,
      request.targets.filter((target) => target.status === 'refused'),
    );
    // A status headline may have come first, and the request been asked for
    // since: that answer is newer than this one.
    const known = state.requests.get(request.id);
    const others = [...state.requests].filter(([id]) => id !== request.id);
    state.requests = new Map([[request.id, known ? withRefused(known) : request], ...others]);
    state.picked.clear();
    $('ask-subject').value = '';
    $('ask-body').value = '';
    $('ask').open = false;
    renderResults();
    renderMyRequests();
    openRequest(request.id);
  } catch (error) {
    state.askError = askRefusal(error);
  }
  state.asking = false;
  renderAsk();
}

/** Why a request was refused as a whole, as a person says it. */
function askRefusal(error) {
  switch (error.condition) {
    case 'policy-violation':
      return t('askTooMany', { max: state.limit ?? '—' });
    case 'resource-constraint':
      return t('askRateLimited');
    case 'item-not-found':
      return t('askNoMatch');
    case 'recipient-unavailable':
      // The component's text names every company and why (in its words).
      return t('askNobody', { detail: error.message });
    default:
      return t('askFailed');
  }
}

/** The person's newest requests, in full, then the one on screen. */
async function loadRequests() {
  try {
    const listed = await session.requests(REQUESTS_LISTED);
    state.requests = new Map(listed.map((request) => [request.id, withRefused(request)]));
  } catch {
    // the list is shown again on the next connection
  }
  renderMyRequests();
  renderRequest();
}

/** A request as the component gives it, with the companies it was not sent to (known since its creation). */
function withRefused(request) {
  const refused = (state.refused.get(request.id) || []).filter(
    (r) => !request.targets.some((target) => target.jid === r.jid),
  );
  return { ...request, targets: [...request.targets, ...refused] };
}

const pending = new Map(); // request id -> a refresh asked for while one is under way

/** Ask again for one request (its statuses and offers moved on). */
async function refreshRequest(id) {
  if (!id || !session.online) return;
  if (pending.has(id)) {
    pending.set(id, true); // once more when this one is back
    return;
  }
  pending.set(id, false);
  try {
    const request = await session.request(id);
    const known = state.requests.has(id);
    state.requests.set(id, withRefused(request));
    if (!known) state.requests = new Map([...state.requests].sort((a, b) => b[1].created - a[1].created));
  } catch {
    // the next status or reconnection asks again
  }
  const again = pending.get(id);
  pending.delete(id);
  renderMyRequests();
  if (id === state.request) loadTargetDetails(id);
  renderRequest();
  if (again) refreshRequest(id);
}

function stateText(request) {
  return t({ open: 'stateOpen', closed: 'stateClosed', expired: 'stateExpired' }[request.state] || 'stateOpen');
}

function renderMyRequests() {
  const requests = [...state.requests.values()];
  $('my-requests').hidden = !requests.length;
  $('my-requests-list').replaceChildren(
    ...requests.map((request) =>
      h(
        'li',
        {},
        h(
          'button',
          { type: 'button', class: 'link', onclick: () => openRequest(request.id) },
          request.subject,
        ),
        h('span', { class: `request-state ${request.state}` }, stateText(request)),
      ),
    ),
  );
}

function openRequest(id) {
  state.request = id;
  state.requestError = '';
  if (state.open) closeChat();
  const url = new URL(location.href);
  url.searchParams.set('request', id);
  window.history.replaceState(null, '', url);
  if (!state.requests.has(id)) refreshRequest(id);
  loadTargetDetails(id);
  renderRequest();
  $('request-title').focus(); // a screen reader starts at the request's subject
}

/** The cards of a request's companies: their names and how fast they answer. */
function loadTargetDetails(id) {
  for (const target of state.requests.get(id)?.targets || []) {
    if (target.status !== 'refused') loadDetails(target.jid);
  }
}

function closeRequest() {
  state.request = null;
  params.delete('request');
  const url = new URL(location.href);
  url.searchParams.delete('request');
  window.history.replaceState(null, '', url);
  renderRequest();
}

/** What a company's line says: its status, or why it was not sent the request. */
function targetText(target) {
  if (target.status === 'refused') {
    if (target.reason === 'closed') {
      const when = companyTime(target.opens);
      return when ? t('notSentClosedUntil', { time: when }) : t('notSentClosed');
    }
    return t(
      { 'opted-out': 'notSentOptedOut', 'over-limit': 'notSentOverLimit' }[target.reason] || 'notSentUnknown',
    );
  }
  const key = `status${target.status.charAt(0).toUpperCase()}${target.status.slice(1)}`;
  return t(key);
}

/**
 * "Monday 09:00": a time the component gives in the company's own time zone
 * (``2026-11-30T09:00:00+07:00``), as the company's clock shows it; '' if none.
 */
function companyTime(stamp) {
  const parts = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(stamp || '');
  if (!parts) return '';
  const day = new Intl.DateTimeFormat(lang(), { weekday: 'long', timeZone: 'UTC' }).format(
    new Date(`${parts[1]}T00:00:00Z`),
  );
  return `${day} ${parts[2]}`;
}

function targetName(target) {
  return target.status === 'refused' && !target.name ? target.jid.split('@')[0] : target.name || companyName(target.jid);
}

function renderRequest() {
  const id = state.request;
  const shown = id !== null && !state.open;
  $('request').hidden = !shown;
  document.body.classList.toggle('requesting', shown);
  if (!shown) return;
  const request = state.requests.get(id);
  $('request-title').textContent = request ? request.subject : '';
  if (!request) {
    $('request-meta').textContent = '';
    $('request-status').textContent = pending.has(id) || !session.online ? t('loadingRequest') : t('requestNotFound');
    for (const el of ['request-targets', 'offers-body']) $(el).replaceChildren();
    $('request-end').hidden = true;
    return;
  }
  const when = new Intl.DateTimeFormat(lang(), { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
  $('request-meta').textContent = [
    stateText(request),
    request.state === 'open' && request.expires ? t('answersUntil', { time: when.format(request.expires) }) : '',
  ]
    .filter(Boolean)
    .join(' · ');
  const accepted = request.targets.find((target) => target.jid === request.accepted);
  $('request-status').textContent =
    state.requestError ||
    (request.state === 'closed'
      ? accepted
        ? t('requestAccepted', { name: targetName(accepted) })
        : t('requestClosed')
      : request.state === 'expired'
        ? t('requestExpired')
        : request.duplicate
          ? t('requestDuplicate')
          : '');
  $('request-status').classList.toggle('error', Boolean(state.requestError));
  $('request-targets').replaceChildren(
    ...request.targets.map((target) =>
      h(
        'li',
        { class: `target ${target.status}`, 'data-jid': target.jid },
        h('span', { class: 'target-name' }, targetName(target)),
        h('span', { class: `target-status ${target.status}` }, targetText(target)),
        target.declineReason ? h('span', { class: 'target-reason' }, t('declinedBecause', { reason: target.declineReason })) : null,
        target.status === 'refused'
          ? null
          : h(
              'button',
              {
                type: 'button',
                class: 'link',
                'aria-label': t('openThreadOf', { name: targetName(target) }),
                onclick: () => openChat(target.jid), // its "back" comes back here
              },
              t('openThread'),
            ),
      ),
    ),
  );
  renderOffers(request);
  $('request-end').hidden = request.state !== 'open';
}

function availabilityText(value) {
  return t({ 'in-stock': 'availInStock', 'to-order': 'availToOrder', unavailable: 'availUnavailable' }[value] || value);
}

function priceText(offer) {
  try {
    return new Intl.NumberFormat(lang(), { style: 'currency', currency: offer.currency }).format(offer.price);
  } catch {
    return `${offer.amount} ${offer.currency}`;
  }
}

/** The offers side by side, in the order asked for (by price, either way). */
function renderOffers(request) {
  let offers = request.targets.filter((target) => target.offer);
  if (state.priceOrder) {
    const sign = state.priceOrder === 'ascending' ? 1 : -1;
    // Prices are compared within a currency; currencies apart, by their code.
    offers = [...offers].sort(
      (a, b) =>
        a.offer.currency.localeCompare(b.offer.currency) || sign * (a.offer.price - b.offer.price),
    );
  }
  $('offers-empty').hidden = offers.length > 0;
  $('offers').hidden = !offers.length;
  $('price-head').setAttribute('aria-sort', state.priceOrder || 'none');
  $('sort-price').textContent = `${t('price')} ${{ ascending: '↑', descending: '↓' }[state.priceOrder] || '↕'}`;
  $('sort-price').setAttribute('aria-label', t('sortByPrice'));
  const day = new Intl.DateTimeFormat(lang(), { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });
  $('offers-body').replaceChildren(
    ...offers.map((target) => {
      const info = state.details.get(target.jid)?.info;
      const seconds = info?.firstResponse;
      const name = targetName(target);
      const chosen = request.accepted === target.jid;
      return h(
        'tr',
        { class: chosen ? 'accepted' : null, 'data-jid': target.jid },
        h('th', { scope: 'row' }, name),
        h('td', { class: 'price' }, priceText(target.offer)),
        h('td', {}, availabilityText(target.offer.availability)),
        h('td', {}, target.offer.validUntil ? day.format(new Date(`${target.offer.validUntil}T00:00:00Z`)) : '—'),
        h('td', {}, seconds === null || seconds === undefined ? t('notMeasured') : duration(seconds)),
        h(
          'td',
          {},
          chosen
            ? h('span', { class: 'accepted-mark' }, t('accepted'))
            : request.state === 'open'
              ? h(
                  'button',
                  { type: 'button', 'aria-label': t('acceptOffer', { name }), onclick: () => endRequest(target.jid) },
                  t('accept'),
                )
              : null,
        ),
      );
    }),
  );
}

function sortByPrice() {
  state.priceOrder = state.priceOrder === 'ascending' ? 'descending' : 'ascending';
  renderRequest();
}

/** Close the request on screen, accepting ``accept``'s offer if given; the component tells the companies. */
async function endRequest(accept = null) {
  const id = state.request;
  if (!id) return;
  try {
    state.requests.set(id, withRefused(await session.closeRequest(id, accept)));
    state.requestError = '';
  } catch {
    state.requestError = t('closeFailed');
    refreshRequest(id); // it may have expired meanwhile
  }
  renderMyRequests();
  renderRequest();
}

// ------------------------------------------------------------------ photos

// The photos a person may send, with the extension of the name they are
// uploaded under (their own file name is not sent).
const PHOTO_TYPES = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp', 'image/gif': 'gif' };

/** Why a photo is not sent: a text's key and its parameters. */
class Refusal extends Error {
  constructor(key, params = {}) {
    super(key);
    this.key = key;
    this.params = params;
  }
}

function megabytes(bytes) {
  return new Intl.NumberFormat(lang(), { maximumFractionDigits: 1 }).format(bytes / 1048576);
}

/** What the chat with ``jid`` says about the photo being sent: {key, params, busy}, or null. */
function setUpload(jid, upload) {
  chatOf(jid).upload = upload;
  if (state.open === jid) renderChat();
}

/** A photo chosen in the open chat: checked, uploaded, then sent as its address. */
async function attachPhoto(event) {
  const file = event.target.files[0];
  event.target.value = ''; // the same file may be chosen again
  const jid = state.open;
  if (!file || !jid) return;
  try {
    const service = await photoService(file);
    setUpload(jid, { key: 'uploading', params: {}, busy: true });
    const address = await uploadPhoto(service, file);
    setUpload(jid, null);
    post(jid, address, address);
  } catch (error) {
    const refusal = error instanceof Refusal ? error : new Refusal('uploadFailed');
    setUpload(jid, { key: refusal.key, params: refusal.params, busy: false });
  }
}

/** The upload service, once ``file`` is known to be a photo it takes; nothing is sent before. */
async function photoService(file) {
  if (!PHOTO_TYPES[file.type]) throw new Refusal('photoType');
  let service;
  try {
    service = await session.uploadService();
  } catch (error) {
    throw new Refusal(error.condition === 'item-not-found' ? 'noUpload' : 'uploadFailed');
  }
  if (service.maxSize !== null && file.size > service.maxSize) {
    throw new Refusal('photoTooBig', { size: megabytes(file.size), max: megabytes(service.maxSize) });
  }
  return service;
}

/** Upload ``file`` (a slot, then an HTTP PUT): the address it is served at. */
async function uploadPhoto(service, file) {
  let slot;
  try {
    slot = await session.uploadSlot(service.jid, file, `photo.${PHOTO_TYPES[file.type]}`);
  } catch {
    throw new Refusal('uploadRefused');
  }
  const response = await fetch(slot.put, {
    method: 'PUT',
    body: file,
    headers: { ...slot.headers, 'Content-Type': file.type },
  });
  if (!response.ok) throw new Refusal('uploadFailed');
  return slot.get;
}

// ------------------------------------------------------------------ unread answers

// The answers not seen yet, per company: {jid: [message key, …]} in
// localStorage per account, so that a reload, a new tab or another tab count
// them too (keys, not a number: two tabs receive the same answer).
const UNREAD_KEPT = 99;

function unreadKey() {
  return state.identity && `orgchat:${CONFIG.xmppHost}:unread:${state.identity.jid}`;
}

function unread() {
  try {
    return (unreadKey() && JSON.parse(localStorage.getItem(unreadKey()) || '{}')) || {};
  } catch {
    return {};
  }
}

function saveUnread(all) {
  localStorage.setItem(unreadKey(), JSON.stringify(all));
  renderUnread();
}

/** The chat with ``jid`` is on screen and the page in view. */
function seeing(jid) {
  return state.open === jid && document.visibilityState === 'visible';
}

function countUnread(message) {
  const all = unread();
  const keys = (all[message.peer] ||= []);
  const key = messageKey(message);
  if (keys.includes(key)) return;
  keys.push(key);
  all[message.peer] = keys.slice(-UNREAD_KEPT);
  saveUnread(all);
}

function clearUnread(jid) {
  const all = unread();
  if (!(jid in all)) return;
  delete all[jid];
  saveUnread(all);
}

function unreadBadge(jid) {
  const count = (unread()[jid] || []).length;
  return h('p', { class: 'badge' }, count ? plural('newAnswers', count) : '');
}

/** The tab's title, the list of chats with new answers, the cards' badges. */
function renderUnread() {
  const all = Object.entries(unread());
  const total = all.reduce((sum, [, keys]) => sum + keys.length, 0);
  document.title = total ? `(${total}) ${t('title')}` : t('title');
  $('unread').hidden = !all.length;
  $('unread-list').replaceChildren(
    ...all.map(([jid, keys]) => {
      if (!state.details.has(jid)) loadDetails(jid); // for its name
      return h(
        'li',
        {},
        h('button', { type: 'button', class: 'link', onclick: () => openChat(jid) }, companyName(jid)),
        h('span', { class: 'badge' }, plural('newAnswers', keys.length)),
      );
    }),
  );
  for (const el of document.querySelectorAll('article.card')) {
    el.querySelector('.badge').replaceWith(unreadBadge(el.dataset.jid));
  }
}

// ------------------------------------------------------------------ notifications

// The browser's notifications of answers, while the page is in the
// background: asked for by the person (a checkbox), remembered in localStorage.
const CAN_NOTIFY = 'Notification' in window;

function notifying() {
  return CAN_NOTIFY && Notification.permission === 'granted' && localStorage.getItem(KEYS.notify) === 'on';
}

async function toggleNotify(event) {
  // Asked on every check: the browser answers at once what the person already decided.
  const on = event.target.checked && (await Notification.requestPermission()) === 'granted';
  localStorage.setItem(KEYS.notify, on ? 'on' : 'off');
  renderNotify();
}

function renderNotify() {
  $('notify-control').hidden = !CAN_NOTIFY;
  if (!CAN_NOTIFY) return;
  const blocked = Notification.permission === 'denied';
  $('notify').checked = notifying();
  $('notify').disabled = blocked;
  $('notify-label').textContent = t(blocked ? 'notifyBlocked' : 'notifyMe');
}

/** The company's name and its answer, as text; a click shows the chat. */
async function notify(message) {
  if (!notifying()) return;
  const jid = message.peer;
  await loadDetails(jid);
  const note = new Notification(companyName(jid), { body: message.text, tag: jid, lang: lang() });
  note.onclick = () => {
    window.focus();
    openChat(jid);
    note.close();
  };
}

// ------------------------------------------------------------------ notifications off the page

// "Notifications and email" (a dialog): web push to this browser while the
// page is closed, and an email address for answers not seen in time, with
// orgchat's urn:orgchat:notify:0 through push.js. Which account this
// browser's push subscription was registered for is kept in localStorage,
// so the box stays ticked after a reload, for that account only.

const PUSH_NOTES = {
  unsupported: 'pushUnsupported',
  denied: 'notifyBlocked',
  'no-key': 'pushNoKey',
  'subscribe-failed': 'pushSubscribeFailed',
};
const ADDRESS_ERRORS = {
  'bad-request': 'emailInvalid',
  'resource-constraint': 'emailTooManyCodes', // three codes a day
  'recipient-unavailable': 'emailUnavailable',
};
const CODE_ERRORS = {
  'bad-request': 'emailWrongCode',
  'not-allowed': 'emailWrongCode',
  'resource-constraint': 'emailTooMany',
};

function pushOn() {
  return (
    pushSupported() &&
    Notification.permission === 'granted' &&
    Boolean(state.identity) &&
    localStorage.getItem(KEYS.push) === state.identity.jid
  );
}

async function openSettings() {
  state.pushNote = '';
  state.emailError = '';
  state.emailChanging = false;
  $('settings-dialog').showModal();
  renderSettings();
  try {
    state.settings = await notifySettings(session, await session.directory());
    state.settingsError = '';
  } catch {
    state.settingsError = 'settingsUnavailable';
  }
  renderSettings();
}

async function togglePush(event) {
  const on = event.target.checked;
  state.pushBusy = true;
  state.pushNote = '';
  renderSettings();
  try {
    const service = await session.directory();
    if (on) {
      // The key as the component advertises it now (it may have changed).
      const { push } = await notifySettings(session, service);
      await turnOnPush(session, service, push.key);
      localStorage.setItem(KEYS.push, state.identity.jid);
    } else {
      await turnOffPush(session, service);
      localStorage.removeItem(KEYS.push);
      state.pushNote = 'pushOff';
    }
  } catch (error) {
    state.pushNote = (error instanceof PushError && PUSH_NOTES[error.reason]) || 'settingsFailed';
  }
  state.pushBusy = false;
  renderSettings();
}

/** Send one change of the email address (``ask(service)`` resolves to the new
 * settings); ``pending``: the address waiting for its code afterwards. */
async function changeEmail(ask, errors, pending) {
  state.emailError = '';
  try {
    state.settings = await ask(await session.directory());
    state.emailChanging = false;
    state.emailPending = pending;
  } catch (error) {
    state.emailError = (error instanceof XmppError && errors[error.condition]) || 'settingsFailed';
  }
  renderSettings();
}

async function sendEmail(event) {
  event.preventDefault();
  const address = $('email-address').value.trim();
  const ask = (service) => setEmail(session, service, address, lang());
  await changeEmail(ask, ADDRESS_ERRORS, address);
  if (!state.emailError) $('email-code').focus();
}

async function sendCode(event) {
  event.preventDefault();
  const code = $('email-code').value.trim();
  await changeEmail((service) => confirmEmail(session, service, code), CODE_ERRORS, '');
  if (!state.emailError) $('email-code').value = '';
}

function renderSettings() {
  const supported = pushSupported();
  const blocked = supported && Notification.permission === 'denied';
  if (!state.pushBusy) $('push').checked = pushOn(); // meanwhile, as the person ticked it
  $('push').disabled = !supported || blocked || state.pushBusy || !state.online;
  const note = !supported ? 'pushUnsupported' : blocked ? 'notifyBlocked' : state.pushNote;
  $('push-status').textContent = note ? t(note) : '';

  const settings = state.settings;
  const email = (settings && settings.email) || '';
  const confirmed = Boolean(email && settings.emailConfirmed);
  // A code waits: for the address asked on this page, or (after a reload) the only one.
  const pending = state.emailPending || (email && !confirmed ? email : '');
  $('email-current').textContent = state.settingsError
    ? t(state.settingsError)
    : confirmed
      ? t('emailConfirmed', { email })
      : '';
  $('email-pending').textContent = pending ? t('emailCodeSent', { email: pending }) : '';
  $('email-form').hidden = !settings || ((confirmed || pending) && !state.emailChanging);
  $('email-code-form').hidden = !pending;
  $('email-change').hidden = !(confirmed || pending) || state.emailChanging;
  $('email-error').textContent = state.emailError ? t(state.emailError) : '';
}

// ------------------------------------------------------------------ wiring

function start() {
  renderAll();
  $('search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    clearTimeout(typingTimer);
    search();
  });
  $('q').addEventListener('input', () => {
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => search(), 400);
  });
  for (const id of ['category', 'city', 'open-now']) $(id).addEventListener('change', () => search());
  $('open-now').addEventListener('change', renderAsk);
  $('more').addEventListener('click', () => search({ more: true }));
  $('chat-close').addEventListener('click', closeChat);
  $('compose').addEventListener('submit', sendMessage);
  $('text').addEventListener('input', onTyping);
  $('photo').accept = Object.keys(PHOTO_TYPES).join(',');
  $('attach').addEventListener('click', () => $('photo').click());
  $('photo').addEventListener('change', attachPhoto);
  $('text').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) sendMessage(event);
  });
  $('lang-switch').addEventListener('click', () => {
    setLang($('lang-switch').dataset.lang);
    renderAll();
  });
  $('login-open').addEventListener('click', openLogin);
  $('login-cancel').addEventListener('click', () => $('login-dialog').close());
  $('login-form').addEventListener('submit', logIn);
  $('logout').addEventListener('click', logOut);
  $('notify').addEventListener('change', toggleNotify);
  $('settings-open').addEventListener('click', openSettings);
  $('settings-close').addEventListener('click', () => $('settings-dialog').close());
  $('push').addEventListener('change', togglePush);
  $('email-form').addEventListener('submit', sendEmail);
  $('email-code-form').addEventListener('submit', sendCode);
  $('email-change').addEventListener('click', () => {
    state.emailChanging = true;
    renderSettings();
    $('email-address').focus();
  });
  $('ask-form').addEventListener('submit', sendAsk);
  for (const input of document.querySelectorAll('input[name="ask-whom"]')) input.addEventListener('change', renderAsk);
  $('request-close').addEventListener('click', closeRequest);
  $('request-end').addEventListener('click', () => endRequest());
  $('sort-price').addEventListener('click', sortByPrice);
  document.addEventListener('visibilitychange', () => state.open && renderLog());
  // Another tab saw an answer, or turned notifications on or off.
  window.addEventListener('storage', () => {
    renderUnread();
    renderNotify();
    renderSettings();
  });
  // Leaving the page ends its session at once, so that agents' answers reach
  // the person by push or email. Also when the browser keeps the page in its
  // back-forward cache: its scripts are frozen there, and an open WebSocket
  // would keep the person "online" for answers nobody sees. Back from that
  // cache, the page connects again.
  window.addEventListener('pagehide', () => {
    clearTimeout(retryTimer);
    state.online = false;
    session.close();
  });
  window.addEventListener('pageshow', (event) => {
    if (event.persisted) connect();
  });
  takeEmailLink();
  connect();
}

start();
