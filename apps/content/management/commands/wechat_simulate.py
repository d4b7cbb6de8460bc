"""Print a signed WeChat OAuth callback link, as the unit's WeChat bridge would redirect a
visitor to it, for demos and manual tests on machines without network access.

    manage.py wechat_simulate wx5f3c1a2b4d6e8f01 --openid oAbc… --next /p/spring/

Open the link in a browser within 10 minutes: the browser's visitor becomes the contact
with that openid (created if new), with everything the browser did before.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.contacts.models import WeChatAccount
from apps.content.services.wechat import wechat_callback_url


class Command(BaseCommand):
    help = "Print a signed WeChat OAuth callback link (valid for 10 minutes)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_id", help="The official account's app id (wx…).")
        parser.add_argument("--openid", default="", help="Default: a new random openid.")
        parser.add_argument("--unionid", default="", help="Optional unionid.")
        parser.add_argument("--next", default="", help="A path on this site to go to after.")
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="Where the site is served."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        account = (
            WeChatAccount.objects.dangerously_unscoped().filter(app_id=options["app_id"]).first()
        )
        if account is None:
            raise CommandError(f"No official account with app id {options['app_id']!r}.")
        if not account.is_active:
            raise CommandError(f"The official account {account.name!r} is switched off.")
        # A real openid is 28 URL-safe characters starting with "o".
        openid = options["openid"] or "o" + secrets.token_urlsafe(20)[:27]
        url = wechat_callback_url(account, openid, options["unionid"], options["next"])
        self.stdout.write(options["base_url"].rstrip("/") + url)
