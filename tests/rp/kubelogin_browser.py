#!/usr/bin/env python3
"""The browser of the kubectl login test, run by kubelogin as --browser-command with the URL of
its local server. Standard library only: it follows the redirect to the provider, fills the
login form with KUBE_OIDC_TEST_USER / KUBE_OIDC_TEST_PASSWORD, allows on the consent page, and
follows the redirect back to kubelogin. Trusts the CA in KUBE_OIDC_TEST_CA. Logs to
KUBE_OIDC_TEST_BROWSER_LOG (appending) when set."""

import html.parser
import http.cookiejar
import os
import ssl
import sys
import urllib.parse
import urllib.request


class Forms(html.parser.HTMLParser):
    """Every form of a page: its action, its hidden fields, the names of its inputs and its
    submit buttons."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "hidden": {}, "inputs": set(), "buttons": {}})
        elif self.forms and tag == "input":
            if a.get("type") == "hidden":
                self.forms[-1]["hidden"][a.get("name")] = a.get("value", "")
            self.forms[-1]["inputs"].add(a.get("name"))
        elif self.forms and tag == "button" and a.get("name"):
            self.forms[-1]["buttons"][a.get("value")] = a.get("name")


def log(message):
    path = os.environ.get("KUBE_OIDC_TEST_BROWSER_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(message + "\n")


def main():
    context = ssl.create_default_context(cafile=os.environ["KUBE_OIDC_TEST_CA"])
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
        urllib.request.HTTPSHandler(context=context),
    )
    response = opener.open(sys.argv[1], timeout=20)
    # Login, consent, then kubelogin's own page: a bounded number of steps.
    for _ in range(4):
        url = response.geturl()
        body = response.read().decode("utf-8", "replace")
        parser = Forms()
        parser.feed(body)
        log(f"{response.status} {url} forms={[f['action'] for f in parser.forms]}")
        if not parser.forms:
            return 0
        form = parser.forms[0]
        fields = dict(form["hidden"])
        if "password" in form["inputs"]:
            fields["username"] = os.environ["KUBE_OIDC_TEST_USER"]
            fields["password"] = os.environ["KUBE_OIDC_TEST_PASSWORD"]
        elif "approve" in form["buttons"]:
            fields[form["buttons"]["approve"]] = "approve"
        else:
            log(f"unexpected form: {form}")
            return 1
        data = urllib.parse.urlencode(fields).encode()
        response = opener.open(urllib.parse.urljoin(url, form["action"]), data=data, timeout=20)
    log("too many steps")
    return 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # the test reads the log
        log(f"error: {e!r}")
        sys.exit(1)
