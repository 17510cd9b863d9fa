"""The tracking endpoints (open pixel, click redirect, unsubscribe) and the event writer behind them."""
