"""scripts/link_packages.py: setup_vllm.sh shares .venv's torch family with .venv-vllm by hard links."""

import os
import subprocess
import sys
import venv
from importlib.metadata import distributions
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "link_packages.py"


def site_packages(root: Path) -> Path:
    return next((root / "lib").glob("python3.*/site-packages"))


def install_fake(site: Path, root: Path, name: str, version: str, *, module: str, script: str | None = None):
    """An installed distribution as pip leaves it: package files, a .dist-info with RECORD, maybe a console script."""
    (site / module).mkdir()
    (site / module / "__init__.py").write_text(f"VERSION = {version!r}\n")
    (site / module / "lib.so").write_bytes(os.urandom(4096))
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    record = [f"{module}/__init__.py,,", f"{module}/lib.so,,", f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    if script:
        bin_script = root / "bin" / script
        bin_script.write_text(f"#!{root / 'bin' / 'python'}\nimport {module}\n")
        bin_script.chmod(0o755)
        record.append(f"../../../bin/{script},,")
    (info / "RECORD").write_text("\n".join(record) + "\n")


@pytest.fixture
def venvs(tmp_path):
    source, target = tmp_path / "source", tmp_path / "target"
    for root in (source, target):
        venv.create(root, with_pip=False)
    install_fake(site_packages(source), source, "torch", "2.14.1", module="torch", script="torchrun")
    install_fake(site_packages(source), source, "nvidia-cublas", "13.1", module="nvidia_cublas")
    install_fake(site_packages(source), source, "numpy", "2.4.6", module="numpy")
    return source, target


def link(source, target, *names):
    return subprocess.run([sys.executable, str(SCRIPT), str(source), str(target), *names],
                          capture_output=True, text=True)


def installed(root: Path) -> dict[str, str]:
    return {d.metadata["Name"]: d.version for d in distributions(path=[str(site_packages(root))])}


def test_named_and_globbed_distributions_are_hard_linked_and_others_left(venvs):
    source, target = venvs
    result = link(source, target, "torch", "nvidia-*")
    assert result.returncode == 0, result.stderr
    assert installed(target) == {"torch": "2.14.1", "nvidia-cublas": "13.1"}
    for rel in ("torch/lib.so", "nvidia_cublas/lib.so", "torch-2.14.1.dist-info/RECORD"):
        assert (site_packages(target) / rel).samefile(site_packages(source) / rel)  # same inode: no second copy
    assert not (site_packages(target) / "numpy").exists()


def test_console_script_points_at_the_target_python(venvs):
    source, target = venvs
    assert link(source, target, "torch").returncode == 0
    script = target / "bin" / "torchrun"
    assert script.read_text().splitlines()[0] == f"#!{target / 'bin' / 'python'}"
    assert os.access(script, os.X_OK)
    assert not script.samefile(source / "bin" / "torchrun")
    assert (source / "bin" / "torchrun").read_text().startswith(f"#!{source / 'bin' / 'python'}")


def test_rerun_skips_what_is_there_and_finishes_an_interrupted_run(venvs):
    source, target = venvs
    # An interrupted run: package files linked, a temporary name left, no .dist-info yet.
    (site_packages(target) / "torch").mkdir()
    os.link(site_packages(source) / "torch" / "__init__.py", site_packages(target) / "torch" / "__init__.py")
    (site_packages(target) / "torch" / "lib.so.linking").write_bytes(b"half")
    assert installed(target) == {}
    first = link(source, target, "torch")
    assert first.returncode == 0, first.stderr
    assert installed(target) == {"torch": "2.14.1"}
    assert "torch 2.14.1" in first.stdout
    again = link(source, target, "torch")
    assert again.returncode == 0 and again.stdout == ""


def test_a_linked_package_imports_in_the_target(venvs):
    source, target = venvs
    assert link(source, target, "torch").returncode == 0
    out = subprocess.run([str(target / "bin" / "python"), "-c", "import torch; print(torch.VERSION)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "2.14.1"


def test_a_record_entry_leading_outside_the_target_venv_is_refused(venvs):
    source, target = venvs
    record = site_packages(source) / "torch-2.14.1.dist-info" / "RECORD"
    record.write_text(record.read_text() + "../../../../escaped.txt,,\n")
    (source.parent / "escaped.txt").write_text("x")
    result = link(source, target, "torch")
    assert result.returncode == 1 and "outside" in result.stderr and "escaped.txt" in result.stderr
    assert "torch" not in installed(target)


def test_no_arguments_prints_usage(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 2 and "FROM_VENV TO_VENV" in result.stderr
