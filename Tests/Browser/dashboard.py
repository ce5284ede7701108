#!/usr/bin/python3
"""The dashboard in a real browser: Debian's chromium, headless, driven by Selenium (python3-selenium)
through chromium-driver. Run by Tests/DroverWebTests/BrowserTests.swift against a running `drover start`
with a web: section, jobs of a handler that fails until a file exists, and a queue to pause.

    dashboard.py BASE_URL SCREENSHOT_DIR OK_FILE

It opens the overview, filters the failed jobs, opens one, creates OK_FILE (so that the next attempt
succeeds), retries the job from its page, watches its state until it is finished, then pauses a queue
from the overview. Each page is saved as a PNG in SCREENSHOT_DIR. Exits 0 when every step held, 1 with
the step that did not (and the page's text) otherwise.
"""
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

base, shots, ok_file = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
os.makedirs(shots, exist_ok=True)

options = Options()
for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900", "--lang=en-US"]:
    options.add_argument(argument)
options.binary_location = "/usr/bin/chromium"
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
step = "starting"


def fail(message):
    body = ""
    try:
        body = driver.find_element(By.TAG_NAME, "body").text
    except WebDriverException:
        pass
    print(f"browser: {step}: {message}\n--- page text ---\n{body}", file=sys.stderr)
    driver.quit()
    sys.exit(1)


def wait_for(what, check, timeout=30.0, reload=False):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except WebDriverException:
            pass
        time.sleep(0.2)
        if reload:
            driver.refresh()
    fail(f"waited {timeout:.0f} s for {what}")


def shot(name):
    driver.save_screenshot(os.path.join(shots, name + ".png"))


def console_errors():
    # A Content-Security-Policy violation or a script error shows in the console.
    try:
        return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
    except WebDriverException:
        return []


try:
    step = "the overview"
    driver.get(base + "/")
    wait_for("the overview's title", lambda: driver.title.startswith("Overview"))
    wait_for("the queues table", lambda: driver.find_element(By.CSS_SELECTOR, "table.queues"))
    wait_for("the chart", lambda: driver.find_element(By.CSS_SELECTOR, "img.chart").get_attribute("naturalWidth") not in (None, "0"))
    shot("overview")

    step = "filtering failed jobs"
    driver.find_element(By.LINK_TEXT, "Jobs").click()
    wait_for("the jobs page", lambda: driver.title.startswith("Jobs"))
    Select(driver.find_element(By.NAME, "state")).select_by_value("failed")
    driver.find_element(By.CSS_SELECTOR, "form.filter button[type=submit]").click()
    wait_for("the failed jobs", lambda: "state=failed" in driver.current_url and driver.find_elements(By.CSS_SELECTOR, "td.state.failed"))
    rows = driver.find_elements(By.CSS_SELECTOR, "table.jobs tbody tr")
    if any(row.find_element(By.CSS_SELECTOR, "td.state").text != "failed" for row in rows):
        fail("a job that is not failed is listed")
    shot("jobs-failed")

    step = "opening a failed job"
    rows[-1].find_element(By.CSS_SELECTOR, "td a").click()  # the oldest: the job whose arguments hold <script>
    wait_for("the job's page", lambda: driver.find_element(By.ID, "job-state").text == "failed")
    if "<script>" not in driver.find_element(By.CSS_SELECTOR, "pre.arguments").text:
        fail("the arguments' <script> should show as text")
    shot("job-failed")

    step = "retrying it"
    open(ok_file, "w").close()
    driver.find_element(By.ID, "retry").click()
    alert = driver.switch_to.alert  # data-confirm: the page's own script asks first
    alert.accept()
    wait_for("the retried job to finish", lambda: driver.find_element(By.ID, "job-state").text == "finished", timeout=60, reload=True)
    shot("job-finished")

    step = "pausing a queue"
    driver.get(base + "/")
    form = driver.find_element(By.CSS_SELECTOR, "form[action='/queues/mail/pause']")
    form.find_element(By.TAG_NAME, "button").click()
    driver.switch_to.alert.accept()
    wait_for("the queue to show paused", lambda: "paused" in driver.find_element(
        By.XPATH, "//table[contains(@class,'queues')]//tr[td[@class='name' and text()='mail']]").get_attribute("class"))
    shot("overview-paused")

    step = "the other pages"
    for path, name in [("/recurring", "recurring"), ("/concurrency", "concurrency"), ("/processes", "processes")]:
        driver.get(base + path)
        wait_for(path, lambda: driver.find_element(By.TAG_NAME, "h2"))
        shot(name)
    errors = console_errors()
    if errors:
        fail(f"the browser console has errors: {errors}")
except WebDriverException as error:
    fail(f"the browser failed: {error}")

driver.quit()
print("browser: every step held")
