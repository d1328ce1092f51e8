"""Settings of the demo project: the suite is enabled with one add-on line.

The second add-on starts a loopback world (sites in five countries and proxies in each) and
writes its proxy file, so the demo runs on a machine with no network. In a real project you
would only keep the first add-on and point PROXYSTACK_PROXIES_FILE at your own YAML.
"""

BOT_NAME = "demo"
SPIDER_MODULES = ["demo.spiders"]
NEWSPIDER_MODULE = "demo.spiders"

ADDONS = {
    "scrapy_proxystack.Addon": 300,
    "demo.world.LoopbackWorldAddon": 100,
}

# Written by LoopbackWorldAddon at start-up; the format is the one documented in README.md.
PROXYSTACK_PROXIES_FILE = "output/proxies.yaml"
PROXYSTACK_PII_ENABLED = True
# What the suite shows of a crawl: a line per locale every second (the default is a minute),
# and the HTML report (with its JSON twin) written at close.
PROXYSTACK_LOGSTATS_INTERVAL = 1.0
PROXYSTACK_REPORT_FILE = "output/report.html"
# At most 4 requests per second to each site, over all its exits: polite, and the crawl lasts
# long enough for a few periodic lines.
PROXYSTACK_DOMAIN_RATE = 4.0

FEEDS = {
    "output/items.jsonl": {"format": "jsonlines", "encoding": "utf8", "overwrite": True},
}

ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_TIMEOUT = 15
RETRY_TIMES = 2
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"
