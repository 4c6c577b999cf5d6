"""Running a pipeline to its outcome, and judging outcomes: against what a stream must give, or against another pipeline's."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from reactivex import Observable

from ..core._errors import StreamError
from ..core._values import Response, Stats
from ..transport._sources import from_frames
from ._streams import Stream

Pipeline = Callable[[Observable[Any]], Observable[Any]]


@dataclass
class Outcome:
    """Everything an observable emitted, and how it ended."""

    items: list[Any] = field(default_factory=list)
    error: Exception | None = None
    completed: bool = False


@dataclass(frozen=True)
class Failure:
    """How a stream that cannot complete must end: the error type a user catches, and the partial response it keeps."""

    error: type[StreamError]
    partial: Response


Expected = Response | Failure


def outcome_of(observable: Observable[Any]) -> Outcome:
    """Subscribe and collect. For a synchronous source (``from_frames``) this returns after the terminal signal."""
    outcome = collected(observable)
    assert outcome.completed or outcome.error is not None, "a synchronous run must end"
    return outcome


def collected(observable: Observable[Any]) -> Outcome:
    """Subscribe and collect, as far as the consumer's demand lets the stream go for now."""
    outcome = Outcome()

    def on_error(error: Exception) -> None:
        outcome.error = error

    def on_completed() -> None:
        outcome.completed = True

    observable.subscribe(outcome.items.append, on_error, on_completed)
    return outcome


def typed_error(error: BaseException) -> tuple[type[BaseException], Response | None]:
    """The error a user catches, as its type and the partial response it keeps (``StreamError.partial``;
    None for an error that is not rxstream's). This is what the oracles compare of an error."""
    return type(error), error.partial if isinstance(error, StreamError) else None


def content_of(response: Response) -> Response:
    """What a stream itself determines of its Response, whichever way it came: all but the stats
    of the delivery (counts, sizes, times), keeping the sender's ``usage`` and ``response_id``."""
    return replace(response, stats=Stats(usage=response.stats.usage, response_id=response.stats.response_id))


def assert_outcome(outcome: Outcome, expected: Expected) -> None:
    """``outcome`` is what ``expected`` says: its Response's content, or the typed error with the partial's content."""
    if isinstance(expected, Response):
        assert outcome.error is None, f"expected a response, got {outcome.error!r}"
        assert outcome.items, "expected a response, got none"
        assert content_of(outcome.items[-1]) == content_of(expected)
        return
    assert outcome.error is not None, f"expected {expected.error.__name__}, got {outcome.items[-1:]!r}"
    kind, partial = typed_error(outcome.error)
    assert kind is expected.error, f"expected {expected.error.__name__}, got {outcome.error!r}"
    assert partial is not None and content_of(partial) == content_of(expected.partial)


def timeless(item: Any) -> Any:
    """A Response with its times only as present or not: two runs of one stream take different times."""
    if not isinstance(item, Response):
        return item
    stats = item.stats
    return replace(
        item,
        stats=replace(
            stats,
            time_to_first_chunk=None if stats.time_to_first_chunk is None else 0.0,
            duration=None if stats.duration is None else 0.0,
        ),
    )


def assert_equal_outcomes(one: Outcome, other: Outcome, *, times: bool = True) -> None:
    """The same items, the same error (type, message, partial) and the same ending; with
    ``times=False`` the Responses' times are compared only as present or not."""
    same: Callable[[Any], Any] = (lambda item: item) if times else timeless
    assert [same(item) for item in one.items] == [same(item) for item in other.items]
    assert repr(one.error) == repr(other.error)
    if one.error is not None and other.error is not None:
        (kind, partial), (other_kind, other_partial) = typed_error(one.error), typed_error(other.error)
        assert kind is other_kind and same(partial) == same(other_partial)
        # the note saying what the partial keeps
        assert getattr(one.error, "__notes__", None) == getattr(other.error, "__notes__", None)
    assert one.completed == other.completed


def assert_same_outcome(a: Pipeline, b: Pipeline, stream: Stream | Iterable[Any]) -> Outcome:
    """Pipelines ``a`` and ``b`` (fused and piped, a user's operator and a reference) give the same
    outcome for ``stream`` (a ``Stream`` or its frames): responses and their stats, errors and their
    partials, times only as present or not. ``a``'s outcome, to check further."""
    frames = list(stream.frames if isinstance(stream, Stream) else stream)
    first = outcome_of(from_frames(frames).pipe(a))
    assert_equal_outcomes(first, outcome_of(from_frames(frames).pipe(b)), times=False)
    return first
