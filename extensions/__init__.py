"""Custom stanza extensions, one package per feature (``<feature>/{__init__,stanza,plugin}.py``).

Everything else orgchat exchanges is defined by an RFC or a XEP (see
docs/protocol.md); a feature that no XEP covers gets its own namespace and its
package here:

* :mod:`extensions.request`: requests to several companies at once
  (``urn:orgchat:request:0``).
"""
