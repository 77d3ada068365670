// The page's texts in English and Russian. The language is the browser's
// (navigator.language) until the person picks the other one; the choice is
// kept in localStorage. Texts are plain strings: the page inserts them with
// textContent, never as HTML.

const STORE_KEY = 'orgchat:lang';

export const LANGUAGES = { en: 'English', ru: 'Русский' };

const TEXTS = {
  en: {
    title: 'City directory',
    language: 'Language',
    connecting: 'Connecting…',
    reconnecting: 'Connection lost. Reconnecting…',
    creatingGuest: 'Preparing your guest access…',
    guestAs: 'You are a guest: {name}',
    loggedInAs: 'Logged in as {jid}',
    logIn: 'Log in',
    logOut: 'Log out',
    loginTitle: 'Log in with your XMPP account',
    loginHint: 'You will see the same conversations as in your other chat apps.',
    address: 'XMPP address',
    password: 'Password',
    remember: 'Stay logged in on this device',
    cancel: 'Cancel',
    wrongPassword: 'Wrong address or password.',
    registrationRefused:
      'Too many new visitors from your network right now. Please try again in a few minutes.',
    registrationFailed: 'Could not create your guest access. Please try again later.',
    connectionFailed: 'Cannot reach the chat server. Retrying…',
    searchLabel: 'Find a company',
    searchPlaceholder: 'Name, e.g. pizza',
    search: 'Search',
    category: 'Category',
    anyCategory: 'Any category',
    city: 'City',
    anyCity: 'Any city',
    openNowFilter: 'Open now',
    results: 'Companies',
    searching: 'Searching…',
    noResults: 'Nothing found. Try another name or fewer filters.',
    searchFailed: 'The search is not available right now. Please try again.',
    showMore: 'Show more',
    message: 'Message',
    phone: 'Phone',
    hours: 'Opening hours',
    openNow: 'Open now',
    closed: 'Closed',
    opensToday: 'Opens today at {time}',
    opensTomorrow: 'Opens tomorrow at {time}',
    opensOn: 'Opens {day} at {time}',
    answersWithin: 'Usually answers within {duration}',
    minutes: { one: '{n} minute', other: '{n} minutes' },
    hoursN: { one: '{n} hour', other: '{n} hours' },
    aMinute: 'a minute',
    chatWith: 'Chat with {name}',
    closeChat: 'Back to the list',
    messages: 'Messages',
    yourMessage: 'Your message',
    typeMessage: 'Type a message…',
    send: 'Send',
    loadingHistory: 'Loading the conversation…',
    historyFailed: 'Earlier messages could not be loaded.',
    emptyChat: 'Write your question: the company answers here.',
    typing: '{name} is typing…',
    you: 'You',
    sending: 'Sending…',
    delivered: 'Delivered',
    read: 'Read',
    notDelivered: 'Not delivered',
    notFound: 'This company was not found. It may have left the directory.',
    unavailable: 'The chat service is not available right now. Your message was not sent.',
    offlineQueued: 'You are offline: what you write is sent when the connection is back.',
    queued: 'Waiting for the connection',
    newAnswersTitle: 'New answers',
    newAnswers: { one: '{n} new answer', other: '{n} new answers' },
    notifyMe: 'Notify me of answers',
    notifyBlocked: 'Notifications are blocked in this browser',
    attachPhoto: 'Attach a photo',
    photo: 'Photo',
    uploading: 'Sending the photo…',
    photoType: 'Only photos can be sent: JPEG, PNG, WebP or GIF.',
    photoTooBig: 'This photo is too big ({size} MB): at most {max} MB can be sent.',
    noUpload: 'Photos cannot be sent through this server.',
    uploadRefused: 'The server did not accept this photo. It was not sent.',
    uploadFailed: 'The photo could not be uploaded. It was not sent; please try again.',
    opensYourTime: 'In your time, they open {time}.',
    askSeveral: 'Ask several companies',
    askLimit: 'One question to at most {max} companies at once; each answers you in its own chat.',
    askWhom: 'Whom to ask',
    askPicked: 'The companies I ticked ({n} of {max})',
    askSearch: 'The companies this search finds',
    askSubject: 'Subject',
    askQuestion: 'Your question',
    askClosedToo: 'Also ask companies that are closed now',
    askSend: { one: 'Send to {n} company', other: 'Send to {n} companies' },
    askSendSearch: 'Send to the companies found',
    askSending: 'Sending…',
    askNonePicked: 'Tick “Ask this company” on the cards of the companies to ask.',
    askNeedCriteria: 'Choose a category or a city, or type a name, to ask the companies the search finds.',
    askNeedText: 'Write a subject and your question.',
    askTooMany: 'At most {max} companies per request: untick some.',
    askNobody: 'None of these companies can take your request now. {detail}',
    askNoMatch: 'No company that takes requests matches this search.',
    askRateLimited: 'You have sent many requests lately. Please try again later.',
    askFailed: 'The request could not be sent. Please try again.',
    pick: 'Ask this company',
    myRequests: 'My requests',
    stateOpen: 'Waiting for answers',
    stateClosed: 'Closed',
    stateExpired: 'Expired',
    answersUntil: 'Answers until {time}',
    companiesAsked: 'Companies asked',
    statusSent: 'Sent',
    statusDelivered: 'Delivered',
    statusSeen: 'Seen',
    statusAnswered: 'Answered',
    statusDeclined: 'Declined',
    statusExpired: 'No answer in time',
    notSentClosedUntil: 'Not sent: closed until {time}',
    notSentClosed: 'Not sent: closed now',
    notSentOptedOut: 'Not sent: does not take requests',
    notSentOverLimit: 'Not sent: receives too many requests right now',
    notSentUnknown: 'Not sent: no such company',
    declinedBecause: 'Reason: {reason}',
    openThread: 'Open the chat',
    openThreadOf: 'Open the chat with {name}',
    offersTitle: 'Offers',
    noOffers: 'No offers yet.',
    company: 'Company',
    price: 'Price',
    sortByPrice: 'Sort by price',
    availability: 'Availability',
    availInStock: 'In stock',
    availToOrder: 'To order',
    availUnavailable: 'Not available',
    validUntil: 'Valid until',
    responsiveness: 'Usually answers within',
    notMeasured: 'not known yet',
    actions: 'Actions',
    accept: 'Accept',
    acceptOffer: 'Accept the offer of {name}',
    accepted: 'Accepted',
    closeRequest: 'Close the request without accepting',
    closeRequestView: 'Back to the list',
    requestAccepted: 'You accepted the offer of {name}; the other companies were told politely.',
    requestClosed: 'You closed this request; the companies were told.',
    requestExpired: 'This request has expired.',
    requestDuplicate: 'You sent the same question to these companies a moment ago: here it is.',
    closeFailed: 'The request could not be closed. Please try again.',
    loadingRequest: 'Loading the request…',
    requestNotFound: 'This request was not found.',
  },
  ru: {
    title: 'Справочник города',
    language: 'Язык',
    connecting: 'Подключение…',
    reconnecting: 'Связь потеряна. Подключаемся снова…',
    creatingGuest: 'Готовим гостевой доступ…',
    guestAs: 'Вы гость: {name}',
    loggedInAs: 'Вы вошли как {jid}',
    logIn: 'Войти',
    logOut: 'Выйти',
    loginTitle: 'Вход с вашим XMPP-аккаунтом',
    loginHint: 'Вы увидите те же переписки, что и в других ваших мессенджерах.',
    address: 'XMPP-адрес',
    password: 'Пароль',
    remember: 'Не выходить на этом устройстве',
    cancel: 'Отмена',
    wrongPassword: 'Неверный адрес или пароль.',
    registrationRefused:
      'Сейчас из вашей сети слишком много новых посетителей. Попробуйте через несколько минут.',
    registrationFailed: 'Не удалось создать гостевой доступ. Попробуйте позже.',
    connectionFailed: 'Сервер чата недоступен. Пробуем снова…',
    searchLabel: 'Найти компанию',
    searchPlaceholder: 'Название, например «пицца»',
    search: 'Найти',
    category: 'Категория',
    anyCategory: 'Любая категория',
    city: 'Город',
    anyCity: 'Любой город',
    openNowFilter: 'Открыто сейчас',
    results: 'Компании',
    searching: 'Ищем…',
    noResults: 'Ничего не найдено. Попробуйте другое название или меньше фильтров.',
    searchFailed: 'Поиск сейчас недоступен. Попробуйте ещё раз.',
    showMore: 'Показать ещё',
    message: 'Написать',
    phone: 'Телефон',
    hours: 'Часы работы',
    openNow: 'Открыто',
    closed: 'Закрыто',
    opensToday: 'Откроется сегодня в {time}',
    opensTomorrow: 'Откроется завтра в {time}',
    opensOn: 'Откроется {day} в {time}',
    answersWithin: 'Обычно отвечает в течение {duration}',
    minutes: { one: '{n} минуты', few: '{n} минут', many: '{n} минут', other: '{n} минуты' },
    hoursN: { one: '{n} часа', few: '{n} часов', many: '{n} часов', other: '{n} часа' },
    aMinute: 'минуты',
    chatWith: 'Чат с компанией {name}',
    closeChat: 'Назад к списку',
    messages: 'Сообщения',
    yourMessage: 'Ваше сообщение',
    typeMessage: 'Напишите сообщение…',
    send: 'Отправить',
    loadingHistory: 'Загружаем переписку…',
    historyFailed: 'Не удалось загрузить прежние сообщения.',
    emptyChat: 'Задайте вопрос: компания ответит здесь.',
    typing: '{name} печатает…',
    you: 'Вы',
    sending: 'Отправляется…',
    delivered: 'Доставлено',
    read: 'Прочитано',
    notDelivered: 'Не доставлено',
    notFound: 'Такой компании нет. Возможно, она ушла из справочника.',
    unavailable: 'Сервис чата сейчас недоступен. Сообщение не отправлено.',
    offlineQueued: 'Нет связи: написанное отправится, когда связь восстановится.',
    queued: 'Ждёт связи',
    newAnswersTitle: 'Новые ответы',
    newAnswers: {
      one: '{n} новый ответ',
      few: '{n} новых ответа',
      many: '{n} новых ответов',
      other: '{n} нового ответа',
    },
    notifyMe: 'Сообщать об ответах',
    notifyBlocked: 'Уведомления запрещены в этом браузере',
    attachPhoto: 'Прикрепить фото',
    photo: 'Фото',
    uploading: 'Отправляем фото…',
    photoType: 'Можно отправить только фото: JPEG, PNG, WebP или GIF.',
    photoTooBig: 'Фото слишком большое ({size} МБ): можно отправить не больше {max} МБ.',
    noUpload: 'Через этот сервер нельзя отправлять фото.',
    uploadRefused: 'Сервер не принял это фото. Оно не отправлено.',
    uploadFailed: 'Не удалось загрузить фото. Оно не отправлено, попробуйте ещё раз.',
    opensYourTime: 'По вашему времени открываются {time}.',
    askSeveral: 'Спросить несколько компаний',
    askLimit: 'Один вопрос сразу не больше чем {max} компаниям; каждая ответит вам в своём чате.',
    askWhom: 'Кого спросить',
    askPicked: 'Отмеченные компании ({n} из {max})',
    askSearch: 'Компании, которые находит этот поиск',
    askSubject: 'Тема',
    askQuestion: 'Ваш вопрос',
    askClosedToo: 'Спросить и тех, кто сейчас закрыт',
    askSend: {
      one: 'Отправить {n} компании',
      few: 'Отправить {n} компаниям',
      many: 'Отправить {n} компаниям',
      other: 'Отправить {n} компании',
    },
    askSendSearch: 'Отправить найденным компаниям',
    askSending: 'Отправляем…',
    askNonePicked: 'Отметьте «Спросить эту компанию» на карточках компаний, которых хотите спросить.',
    askNeedCriteria: 'Выберите категорию или город или введите название, чтобы спросить найденные компании.',
    askNeedText: 'Напишите тему и вопрос.',
    askTooMany: 'Не больше {max} компаний в одном запросе: снимите лишние отметки.',
    askNobody: 'Ни одна из этих компаний сейчас не может принять запрос. {detail}',
    askNoMatch: 'Этому поиску не отвечает ни одна компания, принимающая запросы.',
    askRateLimited: 'Вы недавно отправили много запросов. Попробуйте позже.',
    askFailed: 'Запрос не отправлен. Попробуйте ещё раз.',
    pick: 'Спросить эту компанию',
    myRequests: 'Мои запросы',
    stateOpen: 'Ждём ответов',
    stateClosed: 'Закрыт',
    stateExpired: 'Срок истёк',
    answersUntil: 'Ответы до {time}',
    companiesAsked: 'Кого спросили',
    statusSent: 'Отправлено',
    statusDelivered: 'Доставлено',
    statusSeen: 'Прочитано',
    statusAnswered: 'Ответили',
    statusDeclined: 'Отказались',
    statusExpired: 'Не ответили вовремя',
    notSentClosedUntil: 'Не отправлено: закрыто до {time}',
    notSentClosed: 'Не отправлено: сейчас закрыто',
    notSentOptedOut: 'Не отправлено: не принимает запросы',
    notSentOverLimit: 'Не отправлено: сейчас получает слишком много запросов',
    notSentUnknown: 'Не отправлено: такой компании нет',
    declinedBecause: 'Причина: {reason}',
    openThread: 'Открыть чат',
    openThreadOf: 'Открыть чат с {name}',
    offersTitle: 'Предложения',
    noOffers: 'Предложений пока нет.',
    company: 'Компания',
    price: 'Цена',
    sortByPrice: 'Сортировать по цене',
    availability: 'Наличие',
    availInStock: 'В наличии',
    availToOrder: 'Под заказ',
    availUnavailable: 'Нет в наличии',
    validUntil: 'Действует до',
    responsiveness: 'Обычно отвечает за',
    notMeasured: 'пока неизвестно',
    actions: 'Действия',
    accept: 'Принять',
    acceptOffer: 'Принять предложение {name}',
    accepted: 'Принято',
    closeRequest: 'Закрыть запрос, ничего не принимая',
    closeRequestView: 'Назад к списку',
    requestAccepted: 'Вы приняли предложение {name}; остальным компаниям вежливо сообщили.',
    requestClosed: 'Вы закрыли этот запрос; компаниям сообщили.',
    requestExpired: 'Срок этого запроса истёк.',
    requestDuplicate: 'Вы только что отправили этим компаниям тот же вопрос: вот он.',
    closeFailed: 'Не удалось закрыть запрос. Попробуйте ещё раз.',
    loadingRequest: 'Загружаем запрос…',
    requestNotFound: 'Такой запрос не найден.',
  },
};

// Categories of the directory that have a name in the page's languages;
// any other category is shown as the directory spells it.
const CATEGORIES = {
  en: {
    'bike-shop': 'Bike shop',
    hardware: 'Hardware',
    pharmacy: 'Pharmacy',
    restaurant: 'Restaurant',
    tyres: 'Tyres',
  },
  ru: {
    'bike-shop': 'Веломагазин',
    hardware: 'Хозтовары',
    pharmacy: 'Аптека',
    restaurant: 'Ресторан',
    tyres: 'Шины',
  },
};

// OpenStreetMap opening_hours words (docs/protocol.md, "Company information").
const HOURS_WORDS = {
  ru: { Mo: 'Пн', Tu: 'Вт', We: 'Ср', Th: 'Чт', Fr: 'Пт', Sa: 'Сб', Su: 'Вс', PH: 'праздники', off: 'выходной' },
};

let current = pick();

function pick() {
  const stored = localStorage.getItem(STORE_KEY);
  if (stored && stored in TEXTS) return stored;
  const wanted = (navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language]) || [];
  for (const tag of wanted) {
    const lang = String(tag || '').toLowerCase().split('-')[0];
    if (lang in TEXTS) return lang;
  }
  return 'en';
}

export function lang() {
  return current;
}

export function setLang(value) {
  if (value in TEXTS) {
    current = value;
    localStorage.setItem(STORE_KEY, value);
  }
}

function fill(text, params) {
  return text.replace(/\{(\w+)\}/g, (m, key) => (key in params ? String(params[key]) : m));
}

/** The text ``key`` in the current language, with ``{name}`` placeholders filled. */
export function t(key, params = {}) {
  const text = TEXTS[current][key] ?? TEXTS.en[key] ?? key;
  return fill(text, params);
}

/** A count with its plural form, e.g. plural('minutes', 5) → "5 minutes" / "5 минут". */
export function plural(key, n) {
  const forms = TEXTS[current][key];
  const rule = new Intl.PluralRules(current).select(n);
  return fill(forms[rule] ?? forms.other, { n });
}

export function categoryName(value) {
  return CATEGORIES[current][value] || value;
}

export function hoursText(hours) {
  const words = HOURS_WORDS[current];
  if (!words) return hours;
  return hours.replace(/\b(Mo|Tu|We|Th|Fr|Sa|Su|PH|off)\b/g, (w) => words[w]);
}
