"""Ray backend configuration: pool sizes and placement from the environment, CLI flags, backend choice."""

from __future__ import annotations

import pytest

from patchbay import Resources, Settings
from patchbay.cli import main
from patchbay.cluster import PoolSize, RayOptions, backend_from_settings
from patchbay.errors import ConfigError
from patchbay.orchestrator import InProcessBackend


def test_pools_and_placement_come_from_the_environment():
    options = RayOptions.from_env(
        {
            "PATCHBAY_RAY_POOLS": "image_caption=1:2, *=0:4",
            "PATCHBAY_RAY_CPU_SHARE": "0.5",
            "PATCHBAY_RAY_IDLE_S": "30",
            "PATCHBAY_RAY_QUEUE": "3",
        }
    )
    assert options.queue_per_actor == 3
    assert RayOptions.from_env({}).queue_per_actor == 2
    assert options.pool_size("image_caption") == PoolSize(1, 2)
    assert options.pool_size("anything_else") == PoolSize(0, 4)
    assert options.idle_timeout_s == 30
    assert options.actor_options(Resources(gpu=0.25, cpus=1, memory_mb=1000)) == {
        "num_cpus": 0.5,
        "num_gpus": 0.25,
        "memory": 1000 * 1024 * 1024,
    }
    assert options.actor_options(Resources(cpus=0.1)) == {"num_cpus": 0.05}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PATCHBAY_RAY_POOLS": "image_caption=2"}, "is not TOOL=MIN:MAX"),
        ({"PATCHBAY_RAY_POOLS": "a=3:1"}, "pool size 3:1 is not usable"),
        ({"PATCHBAY_RAY_CPU_SHARE": "lots"}, "PATCHBAY_RAY_CPU_SHARE='lots'; use a number"),
        ({"PATCHBAY_RAY_CPU_SHARE": "2"}, "cpu_share=2.0; use a fraction between 0 and 1"),
        ({"PATCHBAY_RAY_QUEUE": "1.5"}, "PATCHBAY_RAY_QUEUE='1.5'; use a whole number"),
        ({"PATCHBAY_RAY_QUEUE": "0"}, "queue_per_actor=0; use a whole number, 1 or more"),
    ],
)
def test_a_bad_setting_is_one_clear_error(env, message):
    with pytest.raises(ConfigError, match=message):
        RayOptions.from_env(env)


def test_the_backend_follows_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("PATCHBAY_BACKEND", "ray")
    monkeypatch.setenv("PATCHBAY_RAY_ADDRESS", "head:6379")
    settings = Settings.from_env(workspace=tmp_path)
    backend = backend_from_settings(settings)
    assert (backend.name, backend.address, backend.workspace) == ("ray", "head:6379", tmp_path.resolve())
    assert isinstance(backend_from_settings(settings.with_overrides(backend="in-process")), InProcessBackend)
    monkeypatch.setenv("PATCHBAY_BACKEND", "spark")
    with pytest.raises(ConfigError, match="PATCHBAY_BACKEND='spark'; use one of in-process, ray"):
        Settings.from_env()


def test_an_address_with_the_in_process_backend_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "hello", "--backend", "in-process", "--address", "head:6379"])
    assert exit_info.value.code == 2
    assert "--address names a Ray cluster; it needs --backend ray" in capsys.readouterr().err
