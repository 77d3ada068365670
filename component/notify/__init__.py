"""The notification cascade: emails, web pushes and replies by email (issue 5).

* :mod:`component.notify.tokens`: signed, expiring Reply-To and unsubscribe addresses;
* :mod:`component.notify.quotes`: the new text of an email reply;
* :mod:`component.notify.email`: rendering notification emails and sending them;
* :mod:`component.notify.inbound`: the SMTP server that receives replies;
* :mod:`component.notify.push`: web push;
* :mod:`component.notify.cascade`: the engine that decides who is told what, when.
"""
