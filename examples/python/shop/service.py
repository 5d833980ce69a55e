"""The shop's handlers and background work, instrumented with errq:

- errq.asyncio.install() in main: background tasks nobody awaits are reported when they fail;
- @errq.monitor on handlers and jobs: failures reported, outcomes counted (failure_rate rules);
- @errq.retry around the flaky inventory call: each attempt reported, the last unhandled;
- errq.gather for the recommendation fan-out: partial failures reported, the page still served;
- errq.logging.ErrqHandler: exceptions logged with log.exception are reported too.
"""

import asyncio
import logging

import errq

from . import web
from .backends import Inventory, Mailer, Payments, Recommender
from .errors import AppException, NotFound, Unavailable, ValidationError

log = logging.getLogger("shop")
routes = web.RouteTableDef()
inventory = Inventory()
payments = Payments()
recommenders = [Recommender("trending", 0.2), Recommender("similar", 0.5),
                Recommender("history", 0.1)]
mailer = Mailer()
# The in-memory order store holds at most this many orders; past it, new orders get a 503.
MAX_ORDERS = 10000
orders = {}
receipts = asyncio.Queue(maxsize=1000)  # bounded: a slow mailer pushes back on orders


async def error_middleware(request, handler):
    """AppExceptions become their status and code; anything else is a 500, logged (and so
    reported by the ErrqHandler)."""
    try:
        return await handler(request)
    except AppException as e:
        return web.json_response({"error": e.message, "code": e.code}, e.status)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return web.json_response({"error": "internal error"}, 500)


@errq.retry(max_attempts=3, delay=0.01, backoff=2.0, exceptions=(TimeoutError,))
async def reserve_stock(sku, qty):
    await inventory.reserve(sku, qty)


@routes.post("/orders")
@errq.monitor(task="create_order")
async def create_order(request):
    body = await request.json()
    if not isinstance(body, dict) or not body.get("sku") or int(body.get("qty", 0)) <= 0:
        raise ValidationError("an order needs a sku and a positive qty", "BAD_ORDER",
                              {"body": body})
    if len(orders) >= MAX_ORDERS:
        raise Unavailable("order store full (%d orders)" % MAX_ORDERS, "STORE_FULL",
                           {"max_orders": MAX_ORDERS})
    order_id = len(orders) + 1
    await reserve_stock(body["sku"], int(body["qty"]))
    charge = await payments.charge(order_id, 1999 * int(body["qty"]), body.get("card", ""))
    orders[order_id] = {"id": order_id, "sku": body["sku"], "charge": charge}
    await receipts.put((order_id, body.get("email", "")))
    return web.json_response(orders[order_id], 201)


@routes.get("/orders/{order_id}")
@errq.monitor(task="get_order")
async def get_order(request):
    oid = int(request.match_info["order_id"])
    if oid not in orders:
        raise NotFound("no order %d" % oid, "NO_ORDER", {"order_id": oid})
    return web.json_response(orders[oid])


@routes.get("/users/{user_id}/recommendations")
@errq.monitor(task="recommendations")
async def recommendations(request):
    uid = int(request.match_info["user_id"])
    results = await errq.gather(*(r.suggest(uid) for r in recommenders))
    picks = [p for r in results if not isinstance(r, BaseException) for p in r]
    return web.json_response({"user": uid, "picks": picks, "partial": len(picks) < 3})


@errq.monitor(task="send_receipt")
async def send_receipt(order_id, email):
    await mailer.send(email, "Your order %d" % order_id)


async def receipt_worker():
    """Background consumer: each receipt is a fire-and-forget task, as in many services;
    nobody awaits them, errq.asyncio reports the ones that fail."""
    while True:
        order_id, email = await receipts.get()
        asyncio.create_task(send_receipt(order_id, email), name="receipt-%d" % order_id)


async def stock_audit():
    """A periodic job with a bug: sku-3 has no stock and the division fails.  It runs as
    an un-awaited task; the first failure ends it (and is reported, once)."""
    while True:
        for sku, left in inventory.stock.items():
            _ratio = 100 // left  # ZeroDivisionError for sku-3
        await asyncio.sleep(0.05)


def make_app():
    return web.Application(routes, middlewares=[error_middleware])
