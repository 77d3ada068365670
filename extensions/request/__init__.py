"""Requests to several companies (``urn:orgchat:request:0``): stanza code only.

:mod:`.stanza` holds the namespace, its limits and ids; :mod:`.create`,
:mod:`.queries`, :mod:`.offers`, :mod:`.views` and :mod:`.payloads` the
elements of each operation. docs/protocol.md documents them on the wire and
docs/request.xsd is the XML Schema. Like every extension, this package never
imports storage or the component.
"""
