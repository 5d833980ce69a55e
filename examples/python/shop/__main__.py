"""python3 -m shop [--port P] [--demo N]

Runs the shop on 127.0.0.1:P.  With --demo N it sends itself N rounds of traffic (orders
with good and declined cards, lookups, recommendations), then stops: a repeatable run that
leaves errq a set of failures to show.  errq settings come from the environment:
ERRQ_ADDR (default 127.0.0.1:4770), ERRQ_ENVIRONMENT (default dev)."""

import argparse
import asyncio
import json
import logging
import os

import errq

from . import service


async def request(port, method, path, body=None):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode() if body is not None else b""
    writer.write(("%s %s HTTP/1.1\r\nHost: shop\r\nContent-Length: %d\r\n\r\n"
                  % (method, path, len(data))).encode() + data)
    await writer.drain()
    raw = await reader.read()
    writer.close()
    status = int(raw.split(b" ", 2)[1])
    return status, json.loads(raw.split(b"\r\n\r\n", 1)[1] or b"null")


async def demo(port, rounds):
    statuses = {}
    for i in range(rounds):
        card = "4000000000000002" if i % 4 == 3 else "4242424242424242"
        calls = [("POST", "/orders", {"sku": "sku-1", "qty": 1, "card": card,
                                      "email": "buyer%d@example.com" % i if i % 5 else "nobody"}),
                 ("POST", "/orders", {"sku": "", "qty": 0}),
                 ("GET", "/orders/%d" % (i + 1), None),
                 ("GET", "/orders/9999", None),
                 ("GET", "/users/%d/recommendations" % i, None)]
        for method, path, body in calls:
            st, _ = await request(port, method, path, body)
            statuses[st] = statuses.get(st, 0) + 1
    await asyncio.sleep(0.1)  # let the receipt tasks finish
    return statuses


async def main(port, rounds):
    errq.asyncio.install()  # the one line an asyncio service adds, in its running loop
    app = service.make_app()
    server = await app.start("127.0.0.1", port)
    port = server.sockets[0].getsockname()[1]
    print("shop listening on 127.0.0.1:%d" % port, flush=True)
    asyncio.create_task(service.receipt_worker(), name="receipt-worker")
    asyncio.create_task(service.stock_audit(), name="stock-audit")
    async with server:
        if rounds:
            statuses = await demo(port, rounds)
            print("demo: HTTP statuses %s" % json.dumps(statuses, sort_keys=True), flush=True)
        else:
            await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python3 -m shop")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--demo", type=int, default=0, metavar="N")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().addHandler(errq.logging.ErrqHandler())
    errq.init(addr=os.environ.get("ERRQ_ADDR", "127.0.0.1:4770"), service="shop",
              environment=os.environ.get("ERRQ_ENVIRONMENT", "dev"), release="1.0.0")
    try:
        asyncio.run(main(a.port, a.demo))
    finally:
        lost = errq.close(5)
        if lost:
            print("errq: %d events could not be delivered" % lost)
