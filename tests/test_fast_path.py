"""The worker's wrapper answers the plain POST /inferreview before Falcon
(app/wsgi.py's `wrap`): for every request, a worker with that path must send
the status line, the headers (names, values, order) and the body that the
same app sends through Falcon, and count the same. Both apps here are the
real model's, compiled; only the wrapper differs."""

from urllib.parse import quote, quote_plus

import pytest
from falcon import testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config import Limits
from app.drain import no_drain
from app.resources import compiled_inferreview
from app.stats import Stats
from app.wsgi import create_app, create_http_app, wrap

from .bad_inputs import BAD_INPUTS, TEST_LIMITS, oversized

FORM = "application/x-www-form-urlencoded"


def pair(classifier, limits=Limits(), draining=False):
    """(what a worker serves, the same app with every request through Falcon), and their stats."""
    apps, counters = [], []
    for early in (True, False):
        stats, lifecycle = Stats(), no_drain()
        lifecycle.draining = draining
        if early:
            app = create_app(classifier, limits, lifecycle, stats)
        else:
            native = compiled_inferreview(classifier, limits.max_text_chars, stats)
            app = wrap(create_http_app(classifier, limits, lifecycle, stats, native), stats, lifecycle)
        apps.append(app)
        counters.append(stats)
    return apps, counters


def call(app, method="POST", path="/inferreview", body=b"", headers=None, query_string="", **environ):
    env = testing.create_environ(path=path, method=method, body=body, headers=headers or {},
                                 query_string=query_string)
    env.update(environ)
    if not body and "CONTENT_LENGTH" not in environ:
        env.pop("CONTENT_LENGTH", None)
    seen = []
    chunks = app(env, lambda status, headers, exc_info=None: seen.append((status, list(headers))))
    return seen[0][0], seen[0][1], b"".join(chunks)


def same(apps, **request):
    early, falcon_path = (call(app, **request) for app in apps)
    assert early == falcon_path, request
    return early


@pytest.fixture(scope="module")
def apps(real_classifier):
    return pair(real_classifier)[0]


def test_the_plain_case_is_answered_early_with_falcons_status_headers_and_bytes(real_classifier):
    apps, (early_stats, falcon_stats) = pair(real_classifier)
    status, headers, body = same(apps, body=b"text=I+love+this+product.", headers={"Content-Type": FORM})
    assert status == "200 OK" and body == b'{"5 star":0.8846760988235474}'
    assert headers == [("content-length", str(len(body))), ("content-type", "application/json")]
    assert early_stats.by_status == falcon_stats.by_status == {"200 OK": 1}
    assert early_stats.all_predictions() == falcon_stats.all_predictions() == {"5 star": 1}


def test_every_labelled_review_gets_falcons_answer(apps, labelled_texts):
    for text in labelled_texts[::4]:
        for body in (f"text={quote_plus(text)}", f"text={quote(text, safe='')}"):
            same(apps, body=body.encode(), headers={"Content-Type": FORM})


@pytest.mark.parametrize("name,method,path,headers,body,status", BAD_INPUTS + oversized(TEST_LIMITS),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_bad_inputs_get_falcons_answer(real_classifier, name, method, path, headers, body, status):
    apps, _ = pair(real_classifier, TEST_LIMITS)
    path, _, query = path.partition("?")
    assert same(apps, method=method, path=path, body=body, headers=headers, query_string=query)[0][:3] == str(status)


@pytest.mark.parametrize("request_", [
    {"headers": {"Content-Type": FORM + "; charset=utf-8"}},  # not the exact type: Falcon's
    {"headers": {"Content-Type": "Application/X-WWW-Form-Urlencoded"}},
    {"headers": {"Content-Type": FORM}, "query_string": "x=1"},
    {"headers": {"Content-Type": FORM}, "CONTENT_LENGTH": "0"},
    {"headers": {"Content-Type": FORM}, "CONTENT_LENGTH": "0027"},
    {"headers": {"Content-Type": FORM}, "CONTENT_LENGTH": "+27"},
    {"headers": {"Content-Type": FORM}, "CONTENT_LENGTH": "\uff12\uff17"},  # digits, not ASCII ones
    {"headers": {"Content-Type": FORM}, "CONTENT_LENGTH": str(2 << 20)},  # over the limit: 413
    {"headers": {"Content-Type": FORM}, "path": "/inferreview/"},
    {"headers": {"Content-Type": FORM}, "method": "PUT"},
    {"headers": {"Content-Type": FORM}, "method": "HEAD"},
    {"headers": {}},
])
def test_what_is_not_the_plain_case_gets_falcons_answer(apps, request_):
    request_ = {"body": b"text=I+love+this+product.", **request_}
    same(apps, **request_)


def test_a_body_the_responder_declines_reaches_falcon_whole(apps):
    for body in (b"title=Great&body=I+love+it", b"text=caf%C3%A9", "text=café".encode(), b"text=",
                 b"text=a&text=b", b"text=%zz"):
        same(apps, body=body, headers={"Content-Type": FORM})


def test_while_draining_both_paths_close_the_connection(real_classifier):
    apps, _ = pair(real_classifier, draining=True)
    _, headers, _ = same(apps, body=b"text=it+was+ok", headers={"Content-Type": FORM})
    assert headers[-1] == ("Connection", "close")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=80).map(lambda b: b"text=" + b))
def test_generated_bodies_get_falcons_answer(apps, body):
    same(apps, body=body, headers={"Content-Type": FORM})
