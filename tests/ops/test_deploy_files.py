"""The deploy files describe the processes the issue asks for: one beat, gunicorn, migrate at release."""

import runpy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_procfile_runs_gunicorn_workers_one_database_beat_and_migrates_at_release():
    processes = procfile()

    assert set(processes) == {"release", "web", "worker", "beat"}
    assert processes["web"].startswith("gunicorn config.wsgi")
    assert "migrate --noinput" in processes["release"]
    assert "setup_schedules" in processes["release"]
    assert "django_celery_beat.schedulers:DatabaseScheduler" in processes["beat"]


def test_gunicorn_config_has_bounded_workers_and_timeouts(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    config = runpy.run_path(str(ROOT / "config" / "gunicorn.py"))

    assert config["workers"] == 3
    assert 0 < config["timeout"] <= 120
    assert config["graceful_timeout"] <= config["timeout"]


def test_compose_runs_exactly_one_beat_after_the_release_step():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]

    beats = [name for name, s in services.items() if "beat" in " ".join(s.get("command", []))]
    assert beats == ["beat"]
    assert services["beat"]["deploy"]["replicas"] == 1
    assert {"postgres", "redis", "release", "web", "worker", "beat"} <= set(services)
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["release"]["condition"] == "service_completed_successfully"
