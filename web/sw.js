// orgchat's service worker: shows the component's web pushes (issue 15).
//
// The component sends a push (RFC 8030, encrypted per RFC 8291, which the
// browser decrypts) when a company answered a person who is not on the page;
// its data is JSON (docs/protocol.md, "Notifications off XMPP"):
//   {"title": company name, "body": the answer's text, "unseen": count,
//    "jid": the company's address, "link": the page with that chat open}
// `push` shows it as a system notification (one per company: a newer answer
// replaces the older one); `notificationclick` brings a tab that already shows
// that chat forward, else takes a tab of the page there, else opens the link
// in a new window.
// Only links inside this worker's scope (the page's own directory) are ever
// opened: anything else opens the page itself.

const FALLBACK_TITLE = { en: 'New answer', ru: 'Новый ответ' };

function fallbackTitle() {
  const lang = (self.navigator.language || 'en').slice(0, 2).toLowerCase();
  return FALLBACK_TITLE[lang] || FALLBACK_TITLE.en;
}

/** The link if it is a page of ours (inside the scope), else the scope. */
function pageLink(link) {
  const scope = self.registration.scope;
  try {
    const url = new URL(link, scope);
    if (url.href.startsWith(scope)) return url.href;
  } catch {
    // not a URL at all
  }
  return scope;
}

function readPush(data) {
  try {
    const value = data ? data.json() : {};
    return value && typeof value === 'object' ? value : {};
  } catch {
    return { body: data ? data.text() : '' };
  }
}

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('push', (event) => {
  const push = readPush(event.data);
  const title = typeof push.title === 'string' && push.title.trim() ? push.title : fallbackTitle();
  const body = typeof push.body === 'string' ? push.body : '';
  const url = pageLink(typeof push.link === 'string' ? push.link : '');
  event.waitUntil(
    self.registration.showNotification(title, {
      body,
      // One notification per company: the newest answer replaces the last.
      tag: typeof push.jid === 'string' && push.jid ? `orgchat:${push.jid}` : 'orgchat',
      renotify: true,
      data: { url, jid: typeof push.jid === 'string' ? push.jid : '' },
    }),
  );
});

/** Bring a window forward; browsers allow it only while a click is handled. */
async function focus(client) {
  try {
    return await client.focus();
  } catch {
    return client;
  }
}

/** The chat at ``url`` in front: a tab already showing it, else a tab of the page
 * taken to it, else a new window. */
async function openChat(url) {
  const tabs = await self.clients.matchAll({ type: 'window' }); // the page's own tabs
  const same = tabs.find((client) => client.url === url);
  if (same) return focus(same);
  if (tabs.length) {
    const moved = await tabs[0].navigate(url);
    return focus(moved || tabs[0]);
  }
  return self.clients.openWindow(url);
}

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(openChat(pageLink(event.notification.data && event.notification.data.url)));
});
