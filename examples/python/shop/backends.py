"""Simulated dependencies: an inventory service, a payment provider, recommendation
backends, a mailer.  Deterministic (seeded) so that a run of the example is repeatable."""

import asyncio
import random

from .errors import InventoryTimeout, PaymentDeclined, UpstreamError

rng = random.Random(11)


class Inventory:
    def __init__(self):
        self.stock = {"sku-1": 100, "sku-2": 3, "sku-3": 0}

    async def reserve(self, sku, qty):
        await asyncio.sleep(0.001)
        if rng.random() < 0.35:  # the inventory service is slow today
            raise InventoryTimeout("inventory reservation timed out after 5000 ms",
                                   "TIMEOUT", {"sku": sku, "timeout_ms": 5000})
        left = self.stock.get(sku, 0)
        if left < qty:
            raise UpstreamError("not enough stock for %s" % sku, "OUT_OF_STOCK",
                                {"sku": sku, "wanted": qty, "left": left})
        self.stock[sku] = left - qty


class Payments:
    async def charge(self, order_id, amount_cents, card):
        await asyncio.sleep(0.001)
        if card.endswith("0002"):
            raise PaymentDeclined("card declined by issuer", "DECLINED",
                                  {"order_id": order_id, "amount_cents": amount_cents,
                                   "decline": {"reason": "insufficient_funds", "retry": False}})
        return "ch_%d" % order_id


class Recommender:
    def __init__(self, name, failure_rate):
        self.name = name
        self.failure_rate = failure_rate

    async def suggest(self, user_id):
        await asyncio.sleep(0.001)
        if rng.random() < self.failure_rate:
            raise ConnectionResetError("%s backend reset the connection" % self.name)
        return ["%s-pick-%d" % (self.name, user_id % 5)]


class Mailer:
    async def send(self, to, subject):
        await asyncio.sleep(0.001)
        if "@" not in to:
            raise ValueError("invalid recipient %r" % to)
