"""Custom stanza extensions, one package per feature (``<feature>/{__init__,stanza,plugin}.py``).

Everything orgchat exchanges today is defined by an RFC or a XEP (see
docs/protocol.md), so no custom namespace exists yet; features that need one
(requests to several companies at once) add their package here.
"""
