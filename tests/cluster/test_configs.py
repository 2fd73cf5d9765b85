"""The shipped cluster configs parse, pass Ray's own launcher validation, and agree with patchbay."""

from __future__ import annotations

import shlex
from pathlib import Path

import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from patchbay.cluster.batch import build_parser

CONFIGS = Path(__file__).resolve().parents[2] / "patchbay" / "cluster" / "configs"
SHARED = "/mnt/patchbay"


def pod_specs(cluster_spec: dict) -> list[dict]:
    groups = [cluster_spec["headGroupSpec"], *cluster_spec["workerGroupSpecs"]]
    return [group["template"]["spec"] for group in groups]


def check_cluster_spec(cluster_spec: dict) -> None:
    """A GPU worker group whose GPU limit matches what Ray is told, and the shared volume in every pod."""
    assert cluster_spec["rayVersion"] == ray.__version__
    gpu_groups = [g for g in cluster_spec["workerGroupSpecs"] if g["rayStartParams"].get("num-gpus")]
    assert gpu_groups, "no GPU worker group"
    for group in gpu_groups:
        (container,) = group["template"]["spec"]["containers"]
        assert int(container["resources"]["limits"]["nvidia.com/gpu"]) == int(group["rayStartParams"]["num-gpus"])
        assert group["minReplicas"] <= group.get("replicas", 0) <= group["maxReplicas"]
    for spec in pod_specs(cluster_spec):
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"]}
        for container in spec["containers"]:
            assert ray.__version__ in container["image"]
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert claims[mounts[SHARED]] == "patchbay-shared"


def test_the_launcher_config_passes_rays_validation_and_has_a_gpu_worker_type():
    config = yaml.safe_load((CONFIGS / "ray-cluster.yaml").read_text())
    validate_config(prepare_config(config))
    gpu_types = [t for t in config["available_node_types"].values() if t["resources"].get("GPU", 0) >= 1]
    assert gpu_types and config["head_node_type"] in config["available_node_types"]
    assert any(SHARED in command and "mount" in command for command in config["setup_commands"])


def test_the_rayjob_runs_the_batch_entry_point_on_the_shared_volume():
    (job,) = list(yaml.safe_load_all((CONFIGS / "kuberay-rayjob.yaml").read_text()))
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:3] == ["python", "-m", "patchbay.cluster.batch"]
    args = build_parser().parse_args(argv[3:])
    assert args.requests.startswith(SHARED) and args.out.startswith(SHARED)
    env = yaml.safe_load(job["spec"]["runtimeEnvYAML"])["env_vars"]
    assert env["RAY_USAGE_STATS_ENABLED"] == "0"
    check_cluster_spec(job["spec"]["rayClusterSpec"])


def test_the_raycluster_and_its_read_write_many_claim():
    claim, cluster = list(yaml.safe_load_all((CONFIGS / "kuberay-raycluster.yaml").read_text()))
    assert (claim["kind"], claim["metadata"]["name"]) == ("PersistentVolumeClaim", "patchbay-shared")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    check_cluster_spec(cluster["spec"])
