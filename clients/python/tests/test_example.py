"""examples/python/shop runs against a real errqd and leaves the failures it is built to
show: the AppException hierarchy with codes and details, retry attempts, gather's partial
failures, an un-awaited background task, a periodic job that dies."""

import os
import subprocess
import sys
import unittest

import support

EXAMPLE_DIR = os.path.join(support.SRC, "examples", "python")


class ExampleTest(unittest.TestCase):

    def test_shop_demo(self):
        d = support.Errqd().start()
        try:
            env = dict(os.environ, ERRQ_ADDR=d.addr, ERRQ_ENVIRONMENT="test",
                       PYTHONPATH=os.pathsep.join([EXAMPLE_DIR, os.path.dirname(support.HERE)]))
            r = subprocess.run([sys.executable, "-m", "shop", "--port", "0", "--demo", "8"],
                               cwd=EXAMPLE_DIR, env=env, capture_output=True, text=True,
                               timeout=support.DEADLINE * 2)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("demo: HTTP statuses", r.stdout)
            rows = d.events("shop")  # errq.close(5) at exit delivered them
            types = {e["error_type"] for e in rows}
            self.assertLessEqual({"shop.errors.NotFound", "shop.errors.ValidationError",
                                  "shop.errors.PaymentDeclined", "ValueError",
                                  "ZeroDivisionError"}, types)
            declined = [e for e in rows if e["error_type"] == "shop.errors.PaymentDeclined"]
            self.assertEqual(declined[0]["error_code"], "DECLINED")
            self.assertEqual(declined[0]["details"]["decline"],
                             '{"reason": "insufficient_funds", "retry": false}')
            audit = [e for e in rows if e["error_type"] == "ZeroDivisionError"]
            self.assertEqual([(e["task"], e["handled"]) for e in audit], [("stock-audit", False)])
            receipts = [e for e in rows if e["error_type"] == "ValueError"]
            self.assertTrue(all(e["task"] == "send_receipt" for e in receipts), receipts)
            self.assertTrue(all(e["environment"] == "test" for e in rows))
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
