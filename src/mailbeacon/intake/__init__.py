"""Intake: the SMTP submission server and what it takes from each message."""
