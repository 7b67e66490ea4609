"""The staff console: login, queue, tickets, dashboard."""
