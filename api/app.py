"""The Litestar app: routes under /v1, health and metrics, the web page, and `create_app`.

Handlers stay thin: they validate, call the `Service`, and shape the answer. Every error is a
problem-details JSON body with a 4xx (bad input) or 503 (not ready, store down); a 500 is a bug.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any, Final

from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_503_SERVICE_UNAVAILABLE

from api import logs, metrics, schemas
from api.admission import AdmissionControl
from api.feedback import FeedbackError, handle_feedback
from api.service import NotReady, Service
from api.settings import Settings
from graph.model import Kind
from retrievers.related_artists import related_artists

log = logging.getLogger(__name__)
WEB: Final = Path(__file__).resolve().parent / "web"
MAX_USER_CHARS: Final = 100
PROBLEM_JSON: Final = "application/problem+json"
NEIGHBOURS: Final = 100


# Loose bounds for the schema and the parser; the settings' tighter limits are checked in the
# handlers, with messages that name them.
Text = Annotated[str, QueryParameter(max_length=2000)]
Limit = Annotated[int, QueryParameter(ge=1, le=1000)]
OptionalLimit = Annotated[int | None, QueryParameter(ge=1, le=1000)]
KindsParam = Annotated[str | None, QueryParameter(max_length=200)]
EntityId = Annotated[str, PathParameter(max_length=500)]


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error answers a route gives, all problem-details JSON."""
    return {c: ResponseSpec(schemas.Problem, description=HTTPStatus(c).description or
                            HTTPStatus(c).phrase, media_type=PROBLEM_JSON) for c in codes}


COMMON_ERRORS: Final = (400, 413, 429, 503)


class Metrics(PrometheusController):
    """Prometheus text format; left out of the OpenAPI schema (it is not JSON)."""

    include_in_schema = False


class Unavailable(HTTPException):
    """503 with a Retry-After (5 s unless given)."""

    status_code = HTTP_503_SERVICE_UNAVAILABLE

    def __init__(self, *, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail=detail, headers=headers or {"Retry-After": "5"})


def _service(state: State) -> Service:
    service: Service = state.service
    return service


def _ready(state: State) -> Service:
    service = _service(state)
    if not service.ready or service.searcher is None:
        raise Unavailable(detail=f"not ready: {service.load_error or 'indexes are loading'}",
                          headers={"Retry-After": "2"})
    return service


def _kinds(raw: str | None) -> frozenset[Kind]:
    if not raw:
        return frozenset()
    names = [k.strip().lower() for k in raw.split(",") if k.strip()]
    unknown = [n for n in names if n not in Kind._value2member_map_]
    if unknown:
        raise ValidationException(
            detail=f"unknown kinds {', '.join(repr(u[:30]) for u in unknown[:5])}; "
                   f"choose from {', '.join(k.value for k in Kind)}")
    return frozenset(Kind(n) for n in names)


def _text(raw: str, settings: Settings, what: str = "q") -> str:
    text = " ".join(raw.split())
    if not text:
        raise ValidationException(detail=f"{what} must not be empty")
    if len(text) > settings.max_query_chars:
        raise ValidationException(detail=f"{what} is {len(text)} characters; the limit is "
                                         f"{settings.max_query_chars}")
    if any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise ValidationException(detail=f"{what} contains control or invalid characters")
    return text


def _limit(limit: int, settings: Settings) -> int:
    if not 1 <= limit <= settings.max_limit:
        raise ValidationException(detail=f"limit must be between 1 and {settings.max_limit}")
    return limit


@get("/v1/search", sync_to_thread=True, summary="One ranked page of mixed kinds",
     responses=_errors(*COMMON_ERRORS))
def search(state: State, q: Text,
           user: Annotated[str | None, QueryParameter(max_length=MAX_USER_CHARS)] = None,
           limit: OptionalLimit = None, kinds: KindsParam = None,
           debug: FromQuery[bool] = False) -> schemas.SearchPage:
    service = _ready(state)
    settings = service.settings
    text = _text(q, settings)
    if user is not None and not user.strip():
        user = None
    assert service.searcher is not None
    page_size = settings.default_limit if limit is None else limit
    result = service.searcher.search(text, user=user, limit=_limit(page_size, settings),
                                     kinds=_kinds(kinds), debug=debug)
    log.info("search", extra={"search_id": result.page.search_id, "query": text,
                              "items": len(result.page.items),
                              "degraded": result.page.degraded})
    return result.page


@post("/v1/feedback", status_code=HTTP_202_ACCEPTED, sync_to_thread=True,
      summary="Record what a user did with a result; 202 once stored",
      responses=_errors(*COMMON_ERRORS, 404, 422))
def feedback(state: State, data: JSONBody[schemas.FeedbackIn]) -> schemas.FeedbackAck:
    service = _ready(state)
    try:
        created = handle_feedback(service, data)
    except FeedbackError as exc:
        if exc.status == HTTP_503_SERVICE_UNAVAILABLE:
            raise Unavailable(detail=str(exc)) from None
        raise ClientException(detail=str(exc), status_code=exc.status) from None
    metrics.FEEDBACK.labels(action=data.action, result="stored" if created else "duplicate").inc()
    log.info("feedback", extra={"search_id": data.search_id, "entity_id": data.entity_id,
                                "action": data.action})
    return schemas.FeedbackAck("stored" if created else "duplicate", data.search_id,
                               data.entity_id)


@get("/v1/suggest", sync_to_thread=True, summary="Type-ahead completions",
     responses=_errors(*COMMON_ERRORS))
def suggest(state: State, q: Text, limit: Limit = 8,
            kinds: KindsParam = None) -> schemas.Suggestions:
    service = _ready(state)
    text = _text(q, service.settings)
    idx = service.indexes
    items = []
    for m in idx.fuzzy.suggest(text, _limit(limit, service.settings), _kinds(kinds)):
        card = idx.cards.get(m.entity_id)
        if card is not None:
            items.append(schemas.Suggestion(card.id, card.kind.value, card.name, card.subtitle))
    metrics.SUGGESTS.inc()
    return schemas.Suggestions(text, items)


def _card_or_404(service: Service, entity_id: str, kind: Kind | None = None) -> Any:
    card = service.indexes.cards.get(entity_id)
    if card is None or (kind is not None and card.kind is not kind):
        raise NotFoundException(detail=f"no {kind.value if kind else 'entity'} {entity_id[:200]!r}")
    return card


def _store_call(service: Service, what: str) -> None:
    if not service.health.available():
        raise Unavailable(detail=f"{what} needs the catalog store, which is unreachable now",
                          headers={"Retry-After": "5"})


@get("/v1/artists/{artist_id:str}/related", sync_to_thread=True,
     summary="Related artists, each with its reasons",
     responses=_errors(*COMMON_ERRORS, 404))
def artist_related(state: State, artist_id: EntityId,
                   limit: Limit = 10) -> schemas.RelatedArtists:
    service = _ready(state)
    card = _card_or_404(service, artist_id, Kind.ARTIST)
    limit = _limit(limit, service.settings)
    _store_call(service, "related artists")
    idx = service.indexes
    try:
        found = related_artists(service.store, artist_id, limit,
                                embeddings=idx.expanders.get("kge"))
    except Exception as exc:
        service.health.failed(exc)
        raise Unavailable(detail="the catalog store did not answer") from None
    items = [schemas.RelatedArtist(a.id, c.name, c.subtitle, round(a.score, 4), a.reasons)
             for a in found if (c := idx.cards.get(a.id)) is not None]
    return schemas.RelatedArtists(schemas.RelatedItem(card.id, "artist", card.name), items)


@get("/v1/entities/{entity_id:str}", sync_to_thread=True, summary="One entity and its neighbours",
     responses=_errors(*COMMON_ERRORS, 404))
def entity(state: State, entity_id: EntityId) -> schemas.EntityOut:
    service = _ready(state)
    card = _card_or_404(service, entity_id)
    _store_call(service, "entity details")
    try:
        found = service.store.get([entity_id])
        rels = service.store.relations(entity_id)
    except Exception as exc:
        service.health.failed(exc)
        raise Unavailable(detail="the catalog store did not answer") from None
    if not found:
        raise NotFoundException(detail=f"no entity {entity_id[:200]!r}")
    e = found[0]
    cards = service.indexes.cards
    neighbours = []
    for r in rels[:NEIGHBOURS]:
        other, direction = (r.dst, "out") if r.src == entity_id else (r.src, "in")
        if (c := cards.get(other)) is not None:
            neighbours.append(schemas.Neighbour(c.id, c.kind.value, c.name, r.type.value,
                                                direction))  # type: ignore[arg-type]
    return schemas.EntityOut(
        id=e.id, kind=e.kind.value, name=e.name, subtitle=card.subtitle,
        popularity=e.popularity, aliases=list(e.aliases), description=e.description,
        properties=dict(e.extra), neighbours=neighbours)


@get("/health", summary="The process is up")
async def health() -> schemas.Health:
    return schemas.Health("ok")


@get("/ready", sync_to_thread=False, summary="Store reachable and indexes loaded",
     responses={503: ResponseSpec(schemas.Health, description="Not ready yet, or the store "
                                  "is unreachable")})
def ready(state: State) -> Response[schemas.Health]:
    service = _service(state)
    ok = service.ready and service.health.available()
    detail: dict[str, str | float | bool] = {
        "indexes_loaded": service.ready, "store_available": service.health.available()}
    if service.ready:
        detail["catalog_version"] = service.indexes.version
        detail["entities"] = len(service.indexes.cards)
    if service.learner is not None:
        detail["policy"] = service.learner.name
        detail["outcomes_applied"] = service.learner.seq
    if service.load_error:
        detail["error"] = service.load_error
    return Response(schemas.Health("ready" if ok else "not ready", detail),
                    status_code=200 if ok else HTTP_503_SERVICE_UNAVAILABLE)


def _admin(request: Request[Any, Any, Any], service: Service) -> None:
    key = service.settings.api_key
    if not key:
        raise NotAuthorizedException(detail="admin operations are off: no TUNEGRAPH_API_KEY set")
    given = request.headers.get("x-api-key", "")
    if not hmac.compare_digest(given.encode(), key.encode()):
        raise NotAuthorizedException(detail="a valid X-API-Key header is required")


@post("/v1/admin/reload", status_code=HTTP_202_ACCEPTED, summary="Check the catalog version now",
      responses=_errors(401, 429))
async def admin_reload(request: Request[Any, Any, Any], state: State) -> schemas.Health:
    service = _service(state)
    _admin(request, service)
    service.reload()
    return schemas.Health("reloading")


@post("/v1/admin/policy/reset", status_code=HTTP_202_ACCEPTED, sync_to_thread=True,
      summary="Start the policy afresh in every process", responses=_errors(401, 429, 503))
def admin_policy_reset(request: Request[Any, Any, Any], state: State) -> schemas.Health:
    service = _ready(state)
    _admin(request, service)
    assert service.learner is not None
    service.learner.reset()
    return schemas.Health("reset", {"policy": service.learner.name,
                                    "epoch": service.learner.epoch})


@get("/", media_type=MediaType.HTML, include_in_schema=False)
async def index_page() -> Response[bytes]:
    return Response((WEB / "index.html").read_bytes(), media_type=MediaType.HTML)


def create_app(settings: Settings | None = None, service: Service | None = None) -> Litestar:
    """The app. Without a `service`, the lifespan opens the configured store and starts one."""
    settings = settings or (service.settings if service else Settings.from_env())

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        own = service is None
        svc = service or Service.connect(settings)
        app.state.service = svc
        if own:
            svc.start()
        try:
            yield
        finally:
            if own:
                svc.close()

    rate = RateLimitConfig(rate_limit=("minute", settings.rate_limit_per_minute),
                           exclude=["/health", "/ready", "/metrics"])
    middleware = [rate.middleware] if settings.rate_limit_per_minute > 0 else []
    prometheus = PrometheusConfig(app_name="tunegraph", prefix="tunegraph_http", group_path=True,
                                  exclude=["/metrics"])
    middleware.append(prometheus.middleware)
    middleware.insert(0, DefineMiddleware(AdmissionControl, limit=settings.max_in_flight))
    return Litestar(
        route_handlers=[search, feedback, suggest, artist_related, entity, health, ready,
                        admin_reload, admin_policy_reset, index_page, Metrics,
                        create_static_files_router("/static", [WEB])],
        lifespan=[lifespan],
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, NotReady: _not_ready, Exception: _bug},
        cors_config=CORSConfig(allow_origins=list(settings.cors_origins))
        if settings.cors_origins else None,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="TuneGraph", version="1.0.0", path="/schema"),
        logging_config=None,  # logs.configure() owns the handlers: JSON lines
    )


def _problem(status: int, detail: str, headers: dict[str, str] | None = None,
             extra: Any = None) -> Response[dict[str, Any]]:
    """An RFC 9457 problem-details body: `title` names the status, `detail` says what was wrong."""
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase,
                            "status": status, "detail": detail}
    if extra:
        body["errors"] = extra
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    detail = exc.detail
    errors = exc.extra if isinstance(exc, ValidationException) and exc.extra else None
    if isinstance(errors, list):  # Litestar's own validation: say which field and why
        detail = "; ".join(_field_error(e) for e in errors if isinstance(e, dict)) or detail
    return _problem(exc.status_code, detail, dict(exc.headers or {}), errors)


def _field_error(e: dict[str, Any]) -> str:
    key, message = str(e.get("key", "")), str(e.get("message", ""))
    if key == "data" and message == "'data'":  # what Litestar says of a missing body
        return "a JSON object body is required"
    return f"{key or 'body'}: {message}"


def _not_ready(request: Request[Any, Any, Any], exc: NotReady) -> Response[dict[str, Any]]:
    return _problem(HTTP_503_SERVICE_UNAVAILABLE, str(exc), {"Retry-After": "2"})


def _bug(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _problem(500, "internal error; it has been logged")


def app_factory() -> Litestar:
    """For ASGI servers: `granian --interface asgi --factory api.app:app_factory`."""
    logs.configure()
    return create_app()

