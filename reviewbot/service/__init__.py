"""The webhook service: intake (app, auth), store, queue (tasks), workers and series assembly.

Collaborators are passed in: the app gets a :class:`~reviewbot.service.store.Store` and a
:class:`~reviewbot.service.tasks.TaskQueue`; nothing here reads the environment at import time.
"""
