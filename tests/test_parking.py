"""The parking lot where requests wait for an exit (scrapy_proxystack/parking.py)."""

from __future__ import annotations

from scrapy_proxystack.parking import ParkingLot


def test_parking_lot_releases_one_per_group_and_keeps_the_line() -> None:
    lot: ParkingLot[str] = ParkingLot(feedback_timeout=2.0)
    for k in range(3):
        lot.park("fr", "a.com", f"a{k}", ready_at=10.0)
    lot.park("fr", "b.com", "b0", ready_at=12.0)
    assert len(lot) == 4
    assert lot.waiting("fr") == 4
    assert lot.next_wake() == 10.0
    assert lot.due(9.9) == []
    assert lot.due(10.0) == [("fr", "a.com", "a0")]  # one per group
    lot.park("fr", "a.com", "a0", ready_at=11.0, front=True)  # found no exit: back in front
    assert lot.due(10.5) == []
    assert lot.due(11.0) == [("fr", "a.com", "a0")]
    lot.bound("fr", "a.com", 11.0)  # it found one: the next goes at once
    assert lot.due(11.0) == [("fr", "a.com", "a1")]
    # A released request never reported back does not stall its group.
    assert sorted(x for _, _, x in lot.due(13.0)) == ["a2", "b0"]
    assert len(lot) == 0
    assert lot.next_wake() is None


def test_parking_lot_wakes_a_site_and_drains() -> None:
    lot: ParkingLot[int] = ParkingLot()
    for k in range(5):
        lot.park("fr" if k % 2 else "ca", "down.com", k, ready_at=100.0)
    assert lot.wake_domain("down.com", 1.0) == 2
    assert sorted(x for _, _, x in lot.due(1.0)) == [0, 1]
    assert sorted(x for _, _, x in lot.drain()) == [2, 3, 4]
    assert len(lot) == 0
    assert lot.waiting_by_locale() == {}


def test_parking_lot_heap_stays_bounded_when_groups_are_retimed() -> None:
    lot: ParkingLot[int] = ParkingLot()
    lot.park("fr", "a.com", 1, ready_at=1000.0)
    for k in range(10_000):
        lot.wake("fr", "a.com", float(k))
    assert len(lot._heap) <= 4 * len(lot._groups) + 65


def test_a_request_back_in_front_does_not_delay_one_already_released() -> None:
    lot: ParkingLot[str] = ParkingLot(feedback_timeout=2.0)
    for name in ("a", "b", "c"):
        lot.park("fr", "x.com", name, ready_at=1.0)
    assert lot.due(1.0) == [("fr", "x.com", "a")]
    lot.bound("fr", "x.com", 1.5)  # "a" found an exit: "b" may go now ...
    lot.park("fr", "x.com", "late", ready_at=300.0, front=True)  # ... whatever another says
    assert lot.due(1.5) == [("fr", "x.com", "late")]
