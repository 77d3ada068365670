#!/usr/bin/env python3
"""Demo XMPP accounts of the development stack: check, register, list.

The agents are the ones named in ``demo/companies.json``; their passwords and
the customer accounts come from ``demo/accounts.json`` (development passwords,
committed on purpose). ``register`` makes every account exist on ejabberd with
exactly that password, through ejabberd's HTTP API (``/api/check_password``,
``/api/register``, ``/api/change_password``), which the development fragment
opens to loopback without credentials. It is idempotent: an account that
already has the right password costs one request.

Only the standard library is used, so the script also runs in a bare
``python:3.11`` container (see docker-compose.yml).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parent.parent


class DemoError(Exception):
    """The demo files are inconsistent or ejabberd refused a request."""


@dataclass(frozen=True)
class Account:
    """One demo account: an agent of a company or a customer."""

    jid: str
    password: str
    #: "admin of pizza-napoli, agent of ..." or "customer".
    what: str

    @property
    def user(self) -> str:
        return self.jid.split("@", 1)[0]

    @property
    def host(self) -> str:
        return self.jid.split("@", 1)[1]


@dataclass(frozen=True)
class Demo:
    """The content of the two demo files."""

    companies: list[tuple[str, str]]  # (slug, name)
    accounts: list[Account]


def _load_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except OSError as exc:
        raise DemoError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise DemoError(f"{path}: invalid JSON: {exc}") from None


def _check_jid(jid: object, where: str) -> str:
    if not isinstance(jid, str) or jid.count("@") != 1 or "/" in jid or jid.startswith("@"):
        raise DemoError(f"{where}: not a bare JID: {jid!r}")
    return jid


def load(companies_path: Path, accounts_path: Path) -> Demo:
    """Read both files and check that they agree with each other."""
    companies = _load_json(companies_path)
    secrets = _load_json(accounts_path)
    if not isinstance(companies, list):
        raise DemoError(f"{companies_path}: expected a JSON list of companies")
    if not isinstance(secrets, dict):
        raise DemoError(f"{accounts_path}: expected a JSON object")
    agent_pw = secrets.get("agents", {})
    customer_pw = secrets.get("customers", {})
    if not isinstance(agent_pw, dict) or not isinstance(customer_pw, dict):
        raise DemoError(f"{accounts_path}: 'agents' and 'customers' must map JIDs to passwords")

    roles: dict[str, list[str]] = {}
    listed: list[tuple[str, str]] = []
    for i, company in enumerate(companies):
        where = f"{companies_path}[{i}]"
        if not isinstance(company, dict) or not isinstance(company.get("slug"), str):
            raise DemoError(f"{where}: expected an object with a 'slug'")
        slug = company["slug"]
        listed.append((slug, str(company.get("name", slug))))
        for agent in company.get("agents", []):
            if not isinstance(agent, dict):
                raise DemoError(f"{where}: each agent must be an object")
            jid = _check_jid(agent.get("jid"), f"{where} ({slug})")
            roles.setdefault(jid, []).append(f"{agent.get('role', 'agent')} of {slug}")

    missing = sorted(set(roles) - set(agent_pw))
    if missing:
        raise DemoError(f"{accounts_path}: no password for agent(s) {', '.join(missing)}")
    unused = sorted(set(agent_pw) - set(roles))
    if unused:
        raise DemoError(
            f"{accounts_path}: agent(s) {', '.join(unused)} belong to no company in "
            f"{companies_path}"
        )

    accounts: list[Account] = []
    for jid, what in roles.items():
        accounts.append(Account(jid, str(agent_pw[jid]), ", ".join(what)))
    for jid, password in customer_pw.items():
        _check_jid(jid, f"{accounts_path} customers")
        if jid in roles:
            raise DemoError(f"{accounts_path}: {jid} is both an agent and a customer")
        accounts.append(Account(jid, str(password), "customer"))
    return Demo(listed, accounts)


def _call(api: str, command: str, args: dict[str, str], timeout: float) -> tuple[int, Any]:
    """POST one ejabberd API command; (HTTP status, decoded JSON body)."""
    request = urllib.request.Request(
        f"{api.rstrip('/')}/{command}",
        data=json.dumps(args).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DemoError(f"ejabberd API {api} unreachable: {reason}") from None
    try:
        return status, json.loads(body) if body else None
    except json.JSONDecodeError:
        return status, body.decode(errors="replace")


def ensure(api: str, account: Account, timeout: float) -> str:
    """Make the account exist with its demo password; say what was done."""
    auth = {"user": account.user, "host": account.host}
    status, body = _call(api, "check_password", {**auth, "password": account.password}, timeout)
    if status == 200 and body == 0:
        return "exists"
    status, body = _call(api, "register", {**auth, "password": account.password}, timeout)
    if status == 200:
        return "registered"
    if status != 409:  # 409: already registered, with another password
        raise DemoError(f"register {account.jid}: HTTP {status}: {body}")
    status, body = _call(api, "change_password", {**auth, "newpass": account.password}, timeout)
    if status != 200:
        raise DemoError(f"change_password {account.jid}: HTTP {status}: {body}")
    return "password reset"


def cmd_register(demo: Demo, args: argparse.Namespace) -> None:
    done: dict[str, int] = {}
    for account in demo.accounts:
        what = ensure(args.api, account, args.timeout)
        done[what] = done.get(what, 0) + 1
    summary = ", ".join(f"{n} {what}" for what, n in sorted(done.items()))
    print(f"{len(demo.accounts)} demo accounts ready ({summary})")


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def cmd_list(demo: Demo, args: argparse.Namespace) -> None:
    width = max(len(a.jid) for a in demo.accounts)
    pw_width = max(len(a.password) for a in demo.accounts)
    print(f"demo accounts (development passwords from {_shown(args.accounts)}):")
    for a in demo.accounts:
        print(f"  {a.jid:<{width}}  {a.password:<{pw_width}}  {a.what}")
    print(f"demo companies (XMPP address slug@{args.component_domain}):")
    for slug, name in demo.companies:
        print(f"  {slug}@{args.component_domain}  {name}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(
        prog="demo_accounts.py",
        description="Register or list the demo XMPP accounts of the development stack.",
    )
    parser.add_argument("command", choices=["register", "list"])
    parser.add_argument(
        "--api", default="http://127.0.0.1:5280/api", help="ejabberd HTTP API base URL"
    )
    parser.add_argument("--companies", type=Path, default=ROOT / "demo" / "companies.json")
    parser.add_argument("--accounts", type=Path, default=ROOT / "demo" / "accounts.json")
    parser.add_argument("--component-domain", default="biz.localhost")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per API request")
    args = parser.parse_args(argv)
    try:
        demo = load(args.companies, args.accounts)
        if args.command == "register":
            cmd_register(demo, args)
        else:
            cmd_list(demo, args)
    except DemoError as exc:
        print(f"demo_accounts.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
