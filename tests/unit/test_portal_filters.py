import pytest

from dnsportal.templatetags.portal_extras import duration


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (45, "45 s"),
        (60, "1 min"),
        (300, "5 min"),
        (600, "10 min"),
        (5400, "1 h 30 min"),
        (86400, "1 day"),
        (172800, "2 days"),
        (90061, "1 day 1 h"),
        ("3600", "1 h"),
        (None, "—"),
        ("soon", "—"),
    ],
)
def test_duration_says_an_interval_as_people_do(seconds, said):
    assert duration(seconds) == said
