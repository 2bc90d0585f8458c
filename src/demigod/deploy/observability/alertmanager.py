"""`alertmanager.yml`: pages and warnings to a webhook, with commented receivers for
PagerDuty, Slack and Matrix to swap in."""

from __future__ import annotations

import yaml

# Examples for the receivers operators most often want; uncomment one and route to it.
_RECEIVER_EXAMPLES = """
# Other receivers: add one under `receivers:` and point a route at it.
#  - name: pagerduty
#    pagerduty_configs:
#      - routing_key: <PAGERDUTY_INTEGRATION_KEY>
#  - name: slack
#    slack_configs:
#      - api_url: https://hooks.slack.com/services/<T000>/<B000>/<XXXX>
#        channel: "#demigod-alerts"
#        send_resolved: true
#  - name: matrix   # through a webhook bridge such as matrix-alertmanager-receiver
#    webhook_configs:
#      - url: http://127.0.0.1:12345/alerts/<ROOM_ALIAS>
"""


def alertmanager_config(webhook_url: str) -> str:
    """The Alertmanager config as YAML text (with the receiver examples as comments)."""
    webhook = {"url": webhook_url, "send_resolved": True}
    config = {
        "route": {
            "receiver": "team",
            "group_by": ["alertname", "model"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [{"receiver": "pager", "matchers": ['severity="page"'], "continue": False}],
        },
        # A down instance explains its other alerts: do not page for them too.
        "inhibit_rules": [
            {
                "source_matchers": ['alertname="DemigodInstanceDown"'],
                "target_matchers": ['alertname=~"Demigod.+"', 'alertname!="DemigodInstanceDown"'],
                "equal": ["instance"],
            }
        ],
        "receivers": [
            {"name": "pager", "webhook_configs": [webhook]},
            {"name": "team", "webhook_configs": [webhook]},
        ],
    }
    return (
        "# Rendered by `demigod deploy render observability`; set "
        "observability.alert_webhook_url in mesh.yaml, or edit the receivers below.\n"
        + yaml.safe_dump(config, sort_keys=False, width=100)
        + _RECEIVER_EXAMPLES
    )
