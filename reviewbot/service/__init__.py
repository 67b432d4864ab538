"""The service: HTTP webhook, store, queue, workers and the mailer."""
