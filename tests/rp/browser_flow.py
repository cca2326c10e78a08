#!/usr/bin/env python3
"""A person in a real browser: Debian's chromium, driven through WebDriver (Debian's
chromedriver, selenium). Usage: browser_flow.py ISSUER SCREENSHOT_DIR

Opens the demo client's authorization request of examples/local, types a wrong password, then
the right one, denies consent, comes back and allows it, and signs out through end_session;
a screenshot of each page goes to SCREENSHOT_DIR/browser-*.png. Prints one JSON line of what it
saw (the URL the browser ended at after each step and the texts on the pages)."""

import json
import os
import sys
import urllib.parse

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

REDIRECT = "http://127.0.0.1:8000/callback"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def main():
    issuer, shots = sys.argv[1], sys.argv[2]
    os.makedirs(shots, exist_ok=True)
    # Nothing is downloaded: the browser and its driver are Debian's.
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,800",
                "--disable-dev-shm-usage", "--no-first-run"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    driver.set_page_load_timeout(20)
    seen = {}
    authorize = issuer + "/authorize?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": "demo", "redirect_uri": REDIRECT,
        "scope": "openid profile email", "state": "browser-state",
        "code_challenge": CHALLENGE, "code_challenge_method": "S256",
    })

    def shot(name):
        driver.save_screenshot(os.path.join(shots, f"browser-{name}.png"))

    def page_text():
        return driver.find_element(By.TAG_NAME, "body").text

    def submit(button_value=None):
        # A click does not wait for the next page: wait until this one is gone and that one
        # has loaded, or a screenshot may show the old page.
        page = driver.find_element(By.TAG_NAME, "html")
        if button_value:
            driver.find_element(By.CSS_SELECTOR, f"button[value='{button_value}']").click()
        else:
            driver.find_element(By.CSS_SELECTOR, "button[type='submit']").click()
        wait = WebDriverWait(driver, 15)
        wait.until(expected_conditions.staleness_of(page))
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")

    def where():
        # The redirect target does not listen: the browser shows its own error page, and the
        # URL is what the relying party would have received.
        return driver.current_url

    try:
        driver.get(authorize)
        shot("1-sign-in")
        seen["sign_in"] = page_text()
        driver.find_element(By.ID, "username").send_keys("alice")
        driver.find_element(By.ID, "password").send_keys("wrong password")
        submit()
        shot("2-wrong-password")
        seen["wrong_password"] = page_text()
        driver.find_element(By.ID, "password").send_keys("demo-password")
        submit()
        shot("3-consent")
        seen["consent"] = page_text()
        submit("deny")
        seen["denied_at"] = where()
        driver.get(authorize)
        shot("4-consent-again")
        seen["consent_again"] = page_text()
        submit("approve")
        seen["allowed_at"] = where()
        driver.get(issuer + "/end_session?" + urllib.parse.urlencode({"client_id": "demo"}))
        shot("5-sign-out")
        seen["sign_out"] = page_text()
        submit("logout")
        shot("6-signed-out")
        seen["signed_out"] = page_text()
        driver.get(authorize)
        seen["after_sign_out"] = page_text()
    except Exception as e:  # the page it failed on is the evidence
        shot("failed")
        seen["error"] = f"{type(e).__name__}: {e}"
        seen["url"] = driver.current_url
    finally:
        driver.quit()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
