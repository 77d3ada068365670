// Notifications off the page (issue 15): web push and the links of emails.
//
// What the page needs to turn notifications on and off, to give an email
// address, and to open the chat an email links to. It speaks orgchat's
// `urn:orgchat:notify:0` IQs (docs/protocol.md, "Notifications off XMPP")
// through an xmpp.js `Session` (its `iq()`), and owns the service worker
// (`sw.js`, which shows the pushes). Nothing here touches the DOM; errors are
// `PushError`s (`reason`: what app.js says, i18n.js `push*` texts) or xmpp.js `XmppError`s.
//
//   const { push } = await notifySettings(session, service); // push.key: the VAPID key
//   await turnOnPush(session, service, push.key);  // asks the permission, subscribes, registers
//   await turnOffPush(session, service);           // unregisters, unsubscribes
//   await setEmail(session, service, 'anna@example.org', 'ru');  // a code is emailed
//   await confirmEmail(session, service, '482913');
//   const link = readEmailLink(location);  // {company, jid, token} | {company} | null
//   forgetEmailLink();                     // the login leaves the address bar and history
//   new Strophe.Connection(url, TOKEN_LOGIN).connect(link.jid, link.token, ...)

import { $iq, Strophe } from './node_modules/strophe.js/dist/strophe.esm.js';

export const NS_NOTIFY = 'urn:orgchat:notify:0';

/** Strophe.Connection options of a login with an email link's token (SASL X-OAUTH2 only:
 * otherwise Strophe would offer the token as a password to SCRAM first). */
export const TOKEN_LOGIN = { mechanisms: [Strophe.SASLXOAuth2] };

export class PushError extends Error {
  /** reason: "unsupported", "denied" (the browser's permission), "no-key" (push off
   * on the service), "subscribe-failed" (the browser's push service refused). */
  constructor(reason, cause = null) {
    super(reason);
    this.reason = reason;
    this.cause = cause;
  }
}

export function pushSupported() {
  return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

/** The service worker, registered for the page's directory. */
export async function registerWorker() {
  const url = new URL('sw.js', import.meta.url);
  await navigator.serviceWorker.register(url, { scope: new URL('./', import.meta.url).pathname });
  return navigator.serviceWorker.ready;
}

// ------------------------------------------------------------------ settings

function childOf(el, name) {
  for (const c of el ? el.children : []) {
    if (c.localName === name && c.namespaceURI === NS_NOTIFY) return c;
  }
  return null;
}

/** The settings element of an IQ result, read: {email, emailConfirmed, emailEnabled,
 * push: {enabled, devices, key}, quietHours: {spec, tz} | null}. */
export function parseSettings(iqResult) {
  const settings = childOf(iqResult, 'settings');
  const out = {
    email: '',
    emailConfirmed: false,
    emailEnabled: true,
    push: { enabled: true, devices: 0, key: '' },
    quietHours: null,
  };
  if (!settings) return out;
  for (const c of settings.children) {
    if (c.namespaceURI !== NS_NOTIFY) continue;
    if (c.localName === 'email') {
      out.email = c.textContent;
      out.emailConfirmed = c.getAttribute('confirmed') === 'true';
    } else if (c.localName === 'channel' && c.getAttribute('name') === 'push') {
      out.push = {
        enabled: c.getAttribute('enabled') !== 'false',
        devices: Number(c.getAttribute('devices') || 0),
        key: c.getAttribute('key') || '',
      };
    } else if (c.localName === 'channel' && c.getAttribute('name') === 'email') {
      out.emailEnabled = c.getAttribute('enabled') !== 'false';
    } else if (c.localName === 'quiet-hours') {
      out.quietHours = { spec: c.textContent, tz: c.getAttribute('tz') || 'UTC' };
    }
  }
  return out;
}

export async function notifySettings(session, service) {
  return parseSettings(
    await session.iq($iq({ type: 'get', to: service }).c('settings', { xmlns: NS_NOTIFY })),
  );
}

/** Ask for a new address (a six-digit code is emailed to it, in ``lang``). */
export async function setEmail(session, service, address, lang) {
  const iq = $iq({ type: 'set', to: service, 'xml:lang': lang })
    .c('settings', { xmlns: NS_NOTIFY })
    .c('email')
    .t(address);
  return parseSettings(await session.iq(iq));
}

export async function confirmEmail(session, service, code) {
  const iq = $iq({ type: 'set', to: service }).c('confirm', { xmlns: NS_NOTIFY, code });
  return parseSettings(await session.iq(iq));
}

// ------------------------------------------------------------------ web push

function keyBytes(base64url) {
  const text = base64url.replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(text + '='.repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(raw, (ch) => ch.charCodeAt(0));
}

function sameKey(subscription, key) {
  const current = subscription.options && subscription.options.applicationServerKey;
  if (!current) return false;
  const a = new Uint8Array(current);
  const b = keyBytes(key);
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Turn notifications on for this browser: the permission, the service worker,
 * a subscription with the service's VAPID key (``key``, from notifySettings),
 * registered with the component. Resolves to the subscription's JSON.
 */
export async function turnOnPush(session, service, key) {
  if (!pushSupported()) throw new PushError('unsupported');
  if (!key) throw new PushError('no-key');
  if ((await Notification.requestPermission()) !== 'granted') throw new PushError('denied');
  const registration = await registerWorker();
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameKey(subscription, key)) {
    // Made with another key (the service's key changed): useless now.
    await subscription.unsubscribe();
    subscription = null;
  }
  if (!subscription) {
    try {
      subscription = await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: keyBytes(key),
      });
    } catch (error) {
      throw new PushError('subscribe-failed', error);
    }
  }
  const json = subscription.toJSON();
  await session.iq(
    $iq({ type: 'set', to: service }).c('subscribe', {
      xmlns: NS_NOTIFY,
      endpoint: json.endpoint,
      p256dh: json.keys.p256dh,
      auth: json.keys.auth,
    }),
  );
  return json;
}

/** Turn them off: the component forgets this browser's subscription, and the browser too. */
export async function turnOffPush(session, service) {
  if (!pushSupported()) return;
  const registration = await navigator.serviceWorker.getRegistration(new URL('./', import.meta.url));
  const subscription = registration && (await registration.pushManager.getSubscription());
  if (!subscription) return;
  await session.iq(
    $iq({ type: 'set', to: service }).c('unsubscribe', {
      xmlns: NS_NOTIFY,
      endpoint: subscription.endpoint,
    }),
  );
  await subscription.unsubscribe();
}

// ------------------------------------------------------------------ email links

/**
 * What an email's link asks for: ``?company=SLUG`` opens that chat; a guest's
 * link also carries a login in its fragment, ``#jid=…&token=…`` (docs/protocol.md).
 * Null when the address has neither.
 */
export function readEmailLink(loc = window.location) {
  const url = new URL(loc.href);
  const company = url.searchParams.get('company') || '';
  const fragment = new URLSearchParams(url.hash.replace(/^#/, ''));
  const jid = fragment.get('jid') || '';
  const token = fragment.get('token') || '';
  if (jid && token) return { company, jid, token };
  return company ? { company } : null;
}

/** Remove the login from the address bar and the history (it stays usable until it
 * expires: the page keeps it where it keeps a guest's password, if it wants to). */
export function forgetEmailLink() {
  const url = new URL(window.location.href);
  if (!url.hash) return;
  url.hash = '';
  history.replaceState(history.state, '', url.href.replace(/#$/, ''));
}
