# -*- coding: utf-8 -*-
# Copyright: provd maintainers
# Apache License 2.0 (see the repository's Cargo.toml)
"""A `json` stdout callback for the tests: ansible-core ships none (the usual one is in
the ansible.posix collection, which is not on PyPI by itself). Same output shape as that
one, written here from scratch: one JSON document on stdout at the end,

    {"plays": [{"play": {"name", "id"}, "tasks": [{"task": {"name", "id"},
                "hosts": {HOST: RESULT}}]}],
     "stats": {HOST: {"ok", "changed", "failures", "unreachable", "skipped", "rescued", "ignored"}}}

where RESULT is the task result as a playbook sees it (internal keys dropped), with
"action", "changed" and "failed"/"skipped" flags. Used with
ANSIBLE_STDOUT_CALLBACK=json ANSIBLE_CALLBACK_PLUGINS=deploy/ansible/tests/callback_plugins.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: json
type: stdout
short_description: Ansible screen output as one JSON document (provd tests)
description:
  - Collects every play, task and per-host result and prints them as one JSON document
    when the playbook ends.
"""

import json

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "json"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.plays = []

    def v2_playbook_on_play_start(self, play):
        self.plays.append(
            {"play": {"name": play.get_name(), "id": str(play._uuid)}, "tasks": []}
        )

    def _task(self, task):
        entry = {"task": {"name": task.get_name(), "id": str(task._uuid)}, "hosts": {}}
        self.plays[-1]["tasks"].append(entry)
        return entry

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._task(task)

    def _record(self, result, **flags):
        task = getattr(result, "task", None) or result._task
        host = getattr(result, "host", None) or result._host
        raw = getattr(result, "result", None)
        if raw is None:
            raw = result._result
        data = self._dump_results(raw, serialize=False)
        data = json.loads(json.dumps(data, default=str))
        data.update(flags)
        data.setdefault("action", task.action)
        tasks = self.plays[-1]["tasks"]
        entry = next(
            (t for t in reversed(tasks) if t["task"]["id"] == str(task._uuid)), None
        ) or self._task(task)
        entry["hosts"][host.get_name()] = data

    def v2_runner_on_ok(self, result, **kwargs):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs):
        self._record(result, failed=True, ignore_errors=ignore_errors)

    def v2_runner_on_skipped(self, result, **kwargs):
        self._record(result, skipped=True)

    def v2_runner_on_unreachable(self, result, **kwargs):
        self._record(result, unreachable=True)

    def v2_playbook_on_stats(self, stats):
        summary = {}
        for host in sorted(stats.processed.keys()):
            s = stats.summarize(host)
            summary[host] = {
                "ok": s["ok"],
                "changed": s["changed"],
                "failures": s["failures"],
                "unreachable": s["unreachable"],
                "skipped": s["skipped"],
                "rescued": s["rescued"],
                "ignored": s["ignored"],
            }
        self._display.display(json.dumps({"plays": self.plays, "stats": summary}, indent=2, sort_keys=True))
