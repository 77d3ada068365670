"""Wire formats, one package per namespace of orgchat's own, and the codecs every
namespace shares.

Everything else orgchat exchanges is defined by an RFC or a XEP (see
docs/protocol.md); a feature that no XEP covers gets its own namespace and its
package here (``<name>/stanza.py``: the namespace and its limits; a module per
operation where there are several):

* :mod:`extensions.request`: requests to several companies at once
  (``urn:orgchat:request:0``);
* :mod:`extensions.notify`: a customer's notification settings
  (``urn:orgchat:notify:0``).

Shared by all of them and by the component: :mod:`extensions.xml` (escaping,
serialising, :class:`~extensions.xml.PayloadError` and the small readers of
a payload parser) and :mod:`extensions.forms` / :mod:`extensions.submitted_form`
(XEP-0004 data forms). Nothing here imports storage or the component.
"""
