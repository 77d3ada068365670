"""Notification settings (``urn:orgchat:notify:0``): stanza code only.

See :mod:`extensions.notify.stanza`; docs/protocol.md documents it on the wire.
"""
