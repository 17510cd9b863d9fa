"""Delivery: the queue, workers, routes (smarthost or MX), DKIM, retries and the attempt log."""
