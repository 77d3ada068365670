// The directory page: search, company cards, the chat with a company.
// State lives here; what goes over the wire is xmpp.js; texts are i18n.js.
// Everything received is put on the page with textContent, never as HTML.

import { Session, Status, XmppError, bare, messageId, newGuest } from './xmpp.js';
import { LANGUAGES, categoryName, hoursText, lang, plural, setLang, t } from './i18n.js';

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
const KEYS = {
  guest: `orgchat:${CONFIG.xmppHost}:guest`,
  account: `orgchat:${CONFIG.xmppHost}:account`,
  notify: 'orgchat:notify',
};

function readStored(storage, key) {
  try {
    const value = JSON.parse(storage.getItem(key) || 'null');
    return value && value.jid && value.password ? value : null;
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

// ------------------------------------------------------------------ state

const session = new Session({ endpoints: [CONFIG.websocket, CONFIG.bosh], service: CONFIG.service });
const state = {
  identity: null, // {jid, password, guest}
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

function scheduleRetry() {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, retryDelay);
  retryDelay = Math.min(retryDelay * 2, 30_000);
}

/** Log in with the stored account, or as the stored guest, or as a new guest. */
async function connect() {
  clearTimeout(retryTimer);
  const account = storedAccount();
  let identity = account ? { ...account, guest: false } : readStored(localStorage, KEYS.guest);
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
  if (identity.guest) localStorage.setItem(KEYS.guest, JSON.stringify(identity));
  state.identity = identity;
  retryDelay = 1000;
  await online();
}

async function connectFailed(identity, registering, error) {
  const condition = error instanceof XmppError ? error.condition : 'connection-failed';
  if (condition === 'not-authorized' && !identity.guest) {
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
    scheduleRetry();
  }
});

async function online() {
  state.online = true;
  state.everOnline = true;
  setStatus('');
  renderIdentity();
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
  const slug = params.get('company');
  // After a reconnection, what was said meanwhile is in the archive.
  for (const chat of state.chats.values()) chat.loaded = false;
  if (state.open) {
    openChat(state.open);
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
  state.chats.clear();
  renderChat();
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
  renderStatus();
  renderIdentity();
  renderNotify();
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
      'button',
      { type: 'button', class: 'message', onclick: () => openChat(company.jid) },
      t('message'),
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
  document.addEventListener('visibilitychange', () => state.open && renderLog());
  // Another tab saw an answer, or turned notifications on or off.
  window.addEventListener('storage', () => {
    renderUnread();
    renderNotify();
  });
  connect();
}

start();
