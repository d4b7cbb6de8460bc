"""Sending email and WeCom alerts (filled in by the alerts area)."""


def alert_deliveries_send() -> int:
    return 0
