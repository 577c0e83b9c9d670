"""manage.py rollup --period YYYY-MM | --all-ended: close months in this process."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.selectors.periods import periods_to_close
from billing.services.rollup import period_close
from supportbilling.periods import period_parse


class Command(BaseCommand):
    help = "Close a billing period: bill fees and overtime and lock its time entries."

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--period", help="The month to close, as YYYY-MM.")
        which.add_argument(
            "--all-ended", action="store_true", help="Close every ended month still open."
        )

    def handle(self, *args: object, period: str | None, all_ended: bool, **options: object) -> None:
        try:
            months = periods_to_close() if all_ended else [period_parse(period or "")]
            for month in months:
                result = period_close(month=month)
                state = "was already closed" if result.already_closed else "closed"
                self.stdout.write(
                    f"{result.period} {state}: {result.items_created} billable items written."
                )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        if all_ended and not months:
            self.stdout.write("No ended period is open.")
