"""check_operator: the rules every rxstream operator obeys, checked on a user's operator with hypothesis.

The operator is driven by a source and a consumer written here, subscribed to it directly (no
RxPY ``AutoDetachObserver`` in between, which would hide a signal after a terminal one), with
inputs, endings (completion, an error, the consumer disposing) and consumer pauses that
hypothesis draws. A broken rule raises ``ContractViolation`` naming the rule, for the smallest
input hypothesis could shrink the failure to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from hypothesis import HealthCheck, given
from hypothesis import settings as Settings
from hypothesis import strategies as st
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from ..core._demand import Demand, Source, current_demand, subscribe_upstream
from ..core._errors import FrameError, InvalidChunkError
from ..core._stage import Operator, Stage, fuse
from ..core._values import Chunk, Stats
from ._oracles import typed_error
from ._streams import TEXT

MakeOperator = Callable[[], Operator[Any, Any] | Callable[[Observable[Any]], Observable[Any]]]
Ending = Literal["complete", "error", "dispose"]
Wiring = Literal["alone", "fused", "piped"]

RULES = {
    "serial": "signals are serial: none begins while another is in progress",
    "after terminal": "nothing follows a terminal signal",
    "one terminal": "once the source ends, exactly one terminal signal reaches the consumer",
    "typed errors": "an error from upstream is passed on typed: itself, one of its type, or one it caused",
    "disposal": "disposing the subscription disposes the source's",
    "demand": "a paused consumer stops the source, which goes on when it resumes, to the same outcome",
    "fused equals piped": "a Stage gives the same fused with other stages as piped between them",
}


LINGER = 0.05  # seconds a consumer stays in a signal that came from another thread...
LINGERING = 4  # ...for the first few such signals of a drive, where two threads' signals meet if they do


@dataclass(frozen=True)
class Case:
    """One drive of the operator: the source's items and how it ends; when the consumer pauses
    (after receiving ``pause_after`` items, until the source waits) and disposes."""

    items: tuple[Any, ...]
    ending: Ending = "complete"
    error: Callable[[], Exception] | None = None
    dispose_after: int | None = None
    pause_after: int | None = None

    def __repr__(self) -> str:
        shown = ", ".join(map(short, self.items))
        end = {"complete": "then completes", "dispose": f"consumer disposes after {self.dispose_after} items"}.get(
            self.ending, f"then fails with {self.error() if self.error else None!r}"
        )
        pause = "" if self.pause_after is None else f"; consumer pauses after {self.pause_after} items"
        return f"[{shown}], {end}{pause}"


def short(item: Any) -> str:
    """A chunk as its index, its text and whatever else it carries; anything else as its repr."""
    if not isinstance(item, Chunk):
        return repr(item)
    extra = [f"{name}={value!r}" for name, value in zip(Chunk._fields[3:], item[3:], strict=True) if value is not None]
    return f"Chunk({item.index}, {item.data!r}{', final' if item.is_final else ''}{''.join(', ' + e for e in extra)})"


class ContractViolation(AssertionError):
    """An operator broke ``rule`` (a key of ``RULES``) on ``case``, the smallest input hypothesis found."""

    def __init__(self, rule: str, detail: str, case: Case) -> None:
        super().__init__(f"{rule}: {detail}\n  the rule: {RULES[rule]}\n  smallest input: {case!r}")
        self.rule = rule
        self.detail = detail
        self.case = case


@dataclass
class Trace:
    """What one drive saw, at the consumer and at the source."""

    items: list[Any] = field(default_factory=list)
    terminals: list[Exception | None] = field(default_factory=list)  # None for a completion
    broken: list[tuple[str, str]] = field(default_factory=list)
    source_demand: Demand | None = None
    sent_while_paused: int = 0
    source_ended: bool = False
    source_disposed: bool = False
    source_waiting: bool = False
    consumer_disposed: bool = False
    ended_before_source: bool = False
    source_error: Exception | None = None

    def ending(self) -> tuple[Any, ...]:
        """The items and how the stream ended, comparable between drives (errors by type and message)."""
        return comparable(self.items), tuple(None if e is None else (typed_error(e)[0], str(e)) for e in self.terminals)


def comparable(value: Any) -> Any:
    """``value`` comparable between two drives: an object equal only to itself (a Delta's
    transcript) is compared by its type, each drive having its own."""
    if isinstance(value, (tuple, list)):
        return tuple(map(comparable, value))
    if value is not None and type(value).__eq__ is object.__eq__:  # type: ignore[comparison-overlap]
        return type(value).__name__
    return value


class Consumer(abc.ObserverBase[Any]):
    """Records the signals, noting any that overlaps another or follows a terminal one; pauses and disposes as the case says."""

    def __init__(self, case: Case, trace: Trace, demand: Demand, pause: bool) -> None:
        self.case, self.trace, self.demand, self.pause = case, trace, demand, pause
        self.busy = False
        self.paused = False
        self.subscription: abc.DisposableBase | None = None
        self.thread = threading.current_thread()
        self.lingered = 0

    def enter(self, what: str) -> None:
        if self.busy:
            self.trace.broken.append(("serial", f"{what} began while another signal was in progress"))
        if self.trace.terminals:
            ended = "an error" if self.trace.terminals[0] is not None else "a completion"
            rule = "after terminal" if what == "on_next" else "one terminal"
            self.trace.broken.append((rule, f"{what} after {ended}"))
        self.busy = True

    def on_next(self, value: Any) -> None:
        if self.trace.consumer_disposed:
            return  # what comes after disposal, when an operator still has it at hand, is no one's
        self.enter("on_next")
        try:
            if threading.current_thread() is not self.thread and self.lingered < LINGERING:
                self.lingered += 1
                time.sleep(LINGER)  # a signal from another thread: stay a moment, for one that overlaps to be seen
            self.trace.items.append(value)
            if self.pause and len(self.trace.items) == self.case.pause_after:
                self.paused = True
                self.demand.pause()
            if len(self.trace.items) == self.case.dispose_after:
                self.dispose()
        finally:
            self.busy = False

    def on_error(self, error: Exception) -> None:
        self.end(error)

    def on_completed(self) -> None:
        self.end(None)

    def end(self, error: Exception | None) -> None:
        if self.trace.consumer_disposed:
            return
        self.enter("on_error" if error is not None else "on_completed")
        if not self.trace.source_ended:
            self.trace.ended_before_source = True
        self.trace.terminals.append(error)
        self.busy = False

    def dispose(self) -> None:
        if self.subscription is not None and not self.trace.consumer_disposed:
            self.trace.consumer_disposed = True
            self.subscription.dispose()


class Feeder:
    """The source: pushes the case's items while the demand it sees is ready, then ends as the case says."""

    def __init__(self, case: Case, trace: Trace) -> None:
        self.case, self.trace = case, trace
        self.observer: abc.ObserverBase[Any] | None = None
        self.position = 0
        self.pumping = False
        self.consumer: Consumer | None = None

    def subscribe(self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None) -> Disposable:
        self.observer = observer
        self.trace.source_demand = current_demand()

        def dispose() -> None:
            self.trace.source_disposed = True

        return Disposable(dispose)

    def pump(self) -> None:
        if self.pumping or self.observer is None:
            return  # called back while pushing: the loop below goes on
        self.pumping = True
        self.trace.source_waiting = False
        demand, trace, items = self.trace.source_demand, self.trace, self.case.items
        try:
            while not trace.source_disposed and self.position < len(items):
                if demand is not None and not demand.ready:
                    trace.source_waiting = True
                    demand.when_ready(self.resume)
                    return
                self.position += 1
                if self.consumer is not None and self.consumer.paused:
                    trace.sent_while_paused += 1
                self.observer.on_next(items[self.position - 1])
            if not trace.source_disposed and not trace.source_ended and self.case.ending != "dispose":
                trace.source_ended = True
                if self.case.error is not None:
                    trace.source_error = self.case.error()
                    self.observer.on_error(trace.source_error)
                else:
                    self.observer.on_completed()
        finally:
            self.pumping = False

    def resume(self) -> None:
        self.trace.source_waiting = False
        self.pump()


class PassOn(Stage[Any, Any]):
    """A stage that passes everything on: the neighbours of the operator when fused and piped."""

    def on_next(self, value: Any) -> None:
        self.emit(value)


def wired(operator: Any, source: Observable[Any], wiring: Wiring) -> Observable[Any]:
    if wiring == "alone":
        return operator(source)  # type: ignore[no-any-return]
    around: Operator[Any, Any] = Operator(PassOn)
    if wiring == "fused":
        return fuse(around, operator, around)(source)
    return source.pipe(around, operator, around)


def drive(make_operator: MakeOperator, case: Case, *, pause: bool, wiring: Wiring = "alone") -> Trace:
    """Run the operator on ``case`` once, synchronously, and trace what happened."""
    trace = Trace()
    demand = Demand()
    consumer = Consumer(case, trace, demand, pause)
    feeder = Feeder(case, trace)
    feeder.consumer = consumer
    operator = make_operator()
    observable = wired(operator, Observable(feeder.subscribe), wiring)
    if isinstance(operator, Operator):
        # a Stage's signals go straight to the next stage when fused: subscribed directly, as rxstream's
        # sources subscribe a stage, without the AutoDetachObserver of RxPY's subscribe that would hide late ones
        observable = Source(observable._subscribe_core)
    try:
        consumer.subscription = subscribe_upstream(observable, consumer, None, stats=Stats(), demand=demand)
        if case.dispose_after == 0:
            consumer.dispose()
        feeder.pump()
        if consumer.paused:  # the consumer catches up: the source must go on
            consumer.paused = False
            demand.resume()
        if case.ending == "dispose":
            consumer.dispose()
    except Exception as error:  # an operator that raises into its source instead of signalling
        trace.broken.append(("typed errors", f"{error!r} was raised to the source instead of passed on"))
    return trace


def judge(make_operator: MakeOperator, case: Case, slack: int) -> None:
    """Raise ``ContractViolation`` for the first rule the operator breaks on ``case``."""
    trace = drive(make_operator, case, pause=False)
    for rule, detail in trace.broken:
        raise ContractViolation(rule, detail, case)
    if trace.consumer_disposed and not trace.source_disposed:
        raise ContractViolation("disposal", "the consumer disposed, and the source's subscription stayed", case)
    if trace.source_ended and not trace.consumer_disposed and not trace.source_waiting and not trace.terminals:
        raise ContractViolation("one terminal", "the source ended, and no terminal signal reached the consumer", case)
    error = trace.source_error
    if error is not None and trace.terminals and not trace.ended_before_source:
        passed = trace.terminals[0]
        if passed is None:
            raise ContractViolation("typed errors", f"the source's {error!r} became a completion", case)
        if not (issubclass(typed_error(passed)[0], type(error)) or caused_by(passed, error)):
            raise ContractViolation("typed errors", f"the source's {error!r} became {passed!r}", case)
    if trace.source_demand is None:
        raise ContractViolation("demand", "the source saw no demand: the operator cut the consumer's off", case)
    if trace.source_waiting and not trace.consumer_disposed:
        raise ContractViolation("demand", "the source was left waiting for demand that never came back", case)
    if case.pause_after is not None:
        paused = drive(make_operator, case, pause=True)
        if paused.sent_while_paused > slack:
            raise ContractViolation(
                "demand", f"the source sent {paused.sent_while_paused} items while the consumer was paused", case
            )
        if paused.source_waiting and not paused.consumer_disposed:
            raise ContractViolation("demand", "the consumer resumed, and the source was left waiting", case)
        if paused.ending() != trace.ending():
            raise ContractViolation("demand", f"paused: {paused.ending()}; not paused: {trace.ending()}", case)
    if isinstance(make_operator(), Operator):
        fused, piped = (
            drive(make_operator, case, pause=False, wiring=wiring).ending() for wiring in ("fused", "piped")
        )
        if fused != piped:
            raise ContractViolation("fused equals piped", f"fused: {fused}; piped: {piped}", case)


def caused_by(error: BaseException, cause: BaseException) -> bool:
    while error is not None:
        if error is cause:
            return True
        error = error.__cause__  # type: ignore[assignment]
    return False


@st.composite
def chunk_sequences(draw: st.DrawFn, max_chunks: int = 10) -> tuple[Chunk, ...]:
    """Chunks 0..n-1 in order, the last final, or not (a stream cut short): what an operator between reorder and accumulate takes."""
    texts = draw(st.lists(TEXT, min_size=1, max_size=max_chunks))
    final = len(texts) - 1 if draw(st.booleans()) else None
    return tuple(Chunk(index, text, index == final) for index, text in enumerate(texts))


UPSTREAM_ERRORS: st.SearchStrategy[Callable[[], Exception]] = st.sampled_from(
    [
        lambda: InvalidChunkError(1, 3, "a gap it cannot close"),
        lambda: FrameError("{", "invalid JSON"),
        lambda: ConnectionResetError("the peer reset the connection"),  # not rxstream's: it may be wrapped
    ]
)


@st.composite
def cases(
    draw: st.DrawFn, items: st.SearchStrategy[Sequence[Any]], errors: st.SearchStrategy[Callable[[], Exception]]
) -> Case:
    values = tuple(draw(items))
    ending: Ending = draw(st.sampled_from(["complete", "error", "dispose"]))
    return Case(
        values,
        ending,
        draw(errors) if ending == "error" else None,
        draw(st.integers(0, len(values))) if ending == "dispose" else None,
        draw(st.none() | st.integers(1, max(1, len(values)))),
    )


def check_operator(
    make_operator: MakeOperator,
    *,
    items: st.SearchStrategy[Sequence[Any]] | None = None,
    errors: st.SearchStrategy[Callable[[], Exception]] | None = None,
    slack: int = 0,
    max_examples: int = 100,
    settings: Settings | None = None,
) -> None:
    """Check that the operator ``make_operator()`` makes obeys the rules every rxstream operator obeys.

    Each input is driven synchronously on the calling thread, so an operator is checked as it
    runs with a synchronous source (``from_frames``); signals it sends from threads of its own
    are watched for overlap, and must be sent before it returns from its upstream's terminal signal.

    Args:
        make_operator: Makes a fresh operator (an RxPY-style ``Observable -> Observable``
            function or an ``rxstream.Operator``) for each run.
        items: The items a source sends it; by default chunks 0..n-1, the last final.
        errors: Makes the errors a source fails with; by default two of rxstream's and a
            ``ConnectionResetError``.
        slack: How many items the operator may take in while its consumer is paused (a
            buffer's ``max_pending``); 0 for an operator that passes demand straight up.
        max_examples: How many inputs hypothesis tries.
        settings: hypothesis settings to use instead (``max_examples`` is then theirs).

    Raises:
        ContractViolation: (an ``AssertionError``) a rule of ``RULES`` broken, with the
            smallest input found.
    """
    chosen = settings or Settings(max_examples=max_examples)
    strategy = cases(items if items is not None else chunk_sequences(), errors or UPSTREAM_ERRORS)

    @Settings(
        chosen,
        deadline=None,
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(strategy)
    def the_contract_holds(case: Case) -> None:
        judge(make_operator, case, slack)

    the_contract_holds()
