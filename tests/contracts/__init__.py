"""Contract tests: one suite per store interface that unit tests fake.

Each suite's fixture is parametrised over the real store (PostgreSQL or
Redis, through the fixtures of tests/conftest.py) and its in-memory fake
(tests/unit/fakes.py, fakes_services.py), and the same test functions run
against both, so a fake cannot drift from the store it stands in for. The real store is the
truth: where they disagree, the fake is fixed. A suite covers the methods its
fake implements; what a fake leaves out is listed in the suite's docstring.

ResponseTimeStore has no suite: its stand-in in tests/unit/test_directory_iq.py
returns a scripted answer, delay or failure to test the component's cache,
and models nothing a contract could check.
"""
