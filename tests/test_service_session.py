"""The fold of stored events into a user's live state: the one definition of what feedback means."""

from __future__ import annotations

from dataclasses import dataclass

from whyrec.events import fold


@dataclass(frozen=True)
class Ev:
    type: str
    item_id: str | None = None
    value: float | str | None = None
    created_at: float = 0.0


def test_positive_events_append_in_order_and_keep_the_first_occurrence() -> None:
    state = fold(
        "u", ["a", "b"], [Ev("like", "c", created_at=5), Ev("view", "a"), Ev("rate", "d", 3.0, 6)], True
    )
    assert state.history == ("a", "b", "c", "d")
    assert dict(state.from_events) == {"c": 5, "d": 6}
    assert state.n_events == 3 and state.known


def test_not_interested_and_remove_drop_the_item_and_remember_why() -> None:
    state = fold(
        "u", ["a", "b", "c"], [Ev("not_interested", "b"), Ev("remove", "c"), Ev("not_interested", "z")], True
    )
    assert state.history == ("a",)
    assert state.avoid == ("b", "z") and state.removed == ("c",)


def test_the_latest_event_about_an_item_wins() -> None:
    events = [Ev("not_interested", "x"), Ev("like", "x", created_at=9), Ev("remove", "a"), Ev("click", "a")]
    state = fold("u", ["a", "b"], events, True)
    assert state.history == ("b", "x", "a")  # re-added items go to the end: they were just taken
    assert state.avoid == () and state.removed == ()
    again = fold("u", ["a"], [Ev("like", "x"), Ev("not_interested", "x")], True)
    assert again.history == ("a",) and again.avoid == ("x",) and "x" not in again.from_events
    swapped = fold("u", [], [Ev("not_interested", "x"), Ev("remove", "x")], False)
    assert swapped.avoid == () and swapped.removed == ("x",)


def test_mutes_toggle_by_label_and_leave_the_history_alone() -> None:
    events = [
        Ev("mute_interest", value="Drama"),
        Ev("mute_interest", value="War"),
        Ev("unmute_interest", value="Drama"),
    ]
    state = fold("u", ["a"], events, True)
    assert state.muted == ("War",) and state.history == ("a",)


def test_new_user_is_known_once_they_send_anything() -> None:
    assert not fold("new", [], [], False).known
    assert fold("new", [], [Ev("like", "a")], False).history == ("a",)
    assert fold("new", [], [Ev("mute_interest", value="x")], False).known
