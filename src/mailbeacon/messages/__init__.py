"""Messages: tracked content prepared once, personalised per recipient, stored and rendered as MIME."""
