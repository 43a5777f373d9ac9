"""Who may use the dashboard: anyone on this machine; beyond it, only with the password.

The dashboard listens on localhost (``.streamlit/config.toml``). Served on any other address
(``HOST=0.0.0.0 make run``) it needs a password, from ``$PEDSENSE_PASSWORD`` or ``password`` in
Streamlit's secrets (``.streamlit/secrets.toml``), or the explicit opt-out ``PEDSENSE_NO_AUTH=1``
(which warns). With a password configured, every session signs in first, wherever it listens:
``require_login_ui`` draws the form before any page and stops the script until the password
matches (``hmac.compare_digest``, exactly: case and spaces count). The configured password is
stripped of surrounding spaces; beyond loopback it must keep ``MIN_PASSWORD_CHARS``. With Streamlit's own OIDC sign-in configured instead (an
``[auth]`` table in secrets.toml), the form is a "Sign in" button calling ``st.login`` and a
session enters once ``st.user.is_logged_in``. ``python -m ui.auth HOST`` is the same rule for
the Makefile: it refuses to start on a non-loopback HOST with none of them.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import sys
import time

import streamlit as st

PASSWORD_ENV = "PEDSENSE_PASSWORD"
NO_AUTH_ENV = "PEDSENSE_NO_AUTH"
SIGNED_IN = "auth.signed_in"  # session state: a digest of the password this session signed in with
MIN_PASSWORD_CHARS = 8  # beyond this machine: ' ' or 'x' guards nothing
WRONG_PASSWORD_DELAY_S = 1.0  # slows guessing; a reverse proxy can rate-limit further

log = logging.getLogger("pedsense.app")
_warned: set[str] = set()


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and loopback IPs. No address at all is not: Streamlit then listens
    on every interface; a host name may resolve to anything."""
    host = (host or "").strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def configured_password() -> str | None:
    """``$PEDSENSE_PASSWORD``, else ``password`` in Streamlit's secrets, stripped of surrounding
    spaces (a stray newline in a shell export); None when neither holds more than spaces."""
    value = os.environ.get(PASSWORD_ENV, "").strip()
    if value:
        return value
    try:
        value = st.secrets.get("password")
    except Exception:  # noqa: BLE001 - no secrets file (Streamlit raises its own error type)
        return None
    return str(value or "").strip() or None


def oidc_configured() -> bool:
    """True when secrets.toml holds an ``[auth]`` table: Streamlit's ``st.login`` (OIDC)."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file
        return False


def auth_opted_out() -> bool:
    return os.environ.get(NO_AUTH_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def refusal(host: str | None) -> str | None:
    """Why serving on ``host`` is refused (a non-loopback address with no password and no
    opt-out, or with a password shorter than ``MIN_PASSWORD_CHARS``), or None when it may serve.
    The one rule of the app and the Makefile."""
    if is_loopback(host) or oidc_configured():
        return None
    shown = host or "every interface"
    password = configured_password()
    if password is not None:
        if len(password) >= MIN_PASSWORD_CHARS:
            return None
        return (f"pedsense is served on {shown}, beyond this machine, and its password has "
                f"{len(password)} character(s) once the spaces around it are removed: set "
                f"{PASSWORD_ENV} (or `password` in .streamlit/secrets.toml) to at least "
                f"{MIN_PASSWORD_CHARS} characters (see README, \"Serving beyond localhost\").")
    if auth_opted_out():
        return None
    return (f"pedsense is served on {shown}, beyond this machine, without a password. Set "
            f"{PASSWORD_ENV} (or `password = \"...\"` in .streamlit/secrets.toml) so visitors must "
            f"sign in, or set {NO_AUTH_ENV}=1 to serve it without one, to anyone who can reach the "
            "port (see docs/serving.md, \"A password off localhost\").")


def opt_out_warning(host: str | None) -> str:
    return (f"{NO_AUTH_ENV}=1: pedsense is served on {host or 'every interface'} without a "
            "password; anyone who can reach the port can start runs and read the data.")


def _digest(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def may_enter() -> bool:
    """True when this session may see the pages: no password is needed here, or it signed in."""
    if oidc_configured():
        return bool(st.user.is_logged_in)
    if refusal(st.get_option("server.address")) is not None:
        return False
    password = configured_password()
    if password is None:
        return True
    return hmac.compare_digest(str(st.session_state.get(SIGNED_IN, "")), _digest(password))


def require_login_ui() -> None:
    """Draw nothing on localhost without a password; else the sign-in form (or the refusal),
    stopping the script there until this session has signed in. Call it before any page runs."""
    host = st.get_option("server.address")
    if oidc_configured():
        if not may_enter():
            _oidc_sign_in_ui()
            st.stop()
        return
    problem = refusal(host)
    if problem:
        st.error(problem, icon=":material/lock:")
        st.stop()
    password = configured_password()
    if password is None:
        if not is_loopback(host) and host not in _warned:
            _warned.add(host)
            log.warning(opt_out_warning(host))
        return
    if not may_enter():
        _login_form_ui(password)
        st.stop()


def _login_form_ui(password: str) -> None:
    st.title("pedsense")
    st.caption("This dashboard is password-protected. Ask whoever runs it for the password.")
    with st.form("auth.login"):
        entered = st.text_input("Password", type="password", key="auth.password")
        submitted = st.form_submit_button("Sign in", type="primary", icon=":material/login:")
    if not submitted:
        return
    if hmac.compare_digest(entered.encode("utf-8"), password.encode("utf-8")):
        st.session_state[SIGNED_IN] = _digest(password)
        st.rerun()
    time.sleep(WRONG_PASSWORD_DELAY_S)
    st.error("Wrong password. Try again.", icon=":material/lock:")


def _oidc_sign_in_ui() -> None:
    st.title("pedsense")
    st.caption("Sign in with your organisation's account to use this dashboard.")
    st.button("Sign in", type="primary", icon=":material/login:", on_click=st.login, key="auth.oidc")


def sign_out_ui() -> None:
    """A sign-out button (sidebar) for sessions that signed in (password or OIDC)."""
    if oidc_configured() and st.user.is_logged_in:
        st.button(":material/logout: Sign out", key="auth.sign_out", on_click=st.logout)
    elif st.session_state.get(SIGNED_IN) and st.button(":material/logout: Sign out", key="auth.sign_out"):
        st.session_state.pop(SIGNED_IN, None)
        st.rerun()


def main(argv: list[str] | None = None) -> int:
    """``python -m ui.auth HOST``: exit 2 with the reason when serving on HOST is refused."""
    args = sys.argv[1:] if argv is None else argv
    host = args[0] if args else None
    problem = refusal(host)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if not is_loopback(host) and configured_password() is None and not oidc_configured():
        print(f"warning: {opt_out_warning(host)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
