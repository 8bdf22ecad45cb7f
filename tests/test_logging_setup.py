import subprocess
import sys


def test_quiet_lightning_waits_for_lightning_and_then_silences_its_banner() -> None:
    """Called before Lightning is loaded, ``quiet_lightning`` imports nothing heavy; when Lightning
    is imported later its loggers go to WARNING (no "GPU available" banner from a Trainer), and
    the module keeps its own loader (the import hook leaves no trace)."""
    code = (
        "import logging, sys\n"
        "from mmrefine.logging_setup import quiet_lightning\n"
        "quiet_lightning(); quiet_lightning()\n"
        "assert not [m for m in ('torch', 'lightning') if m in sys.modules]\n"
        "hooks = [f for f in sys.meta_path if type(f).__name__ == '_AfterImport']\n"
        "assert len(hooks) == 1, hooks\n"
        "import lightning.pytorch as pl\n"
        "assert not [f for f in sys.meta_path if type(f).__name__ == '_AfterImport']\n"
        "assert type(pl.__loader__).__name__ == 'SourceFileLoader' and pl.__spec__.loader is pl.__loader__\n"
        "assert logging.getLogger('lightning.pytorch').level == logging.WARNING\n"
        "assert logging.getLogger('lightning.fabric').level == logging.WARNING\n"
        "pl.Trainer(accelerator='cpu', logger=False, enable_checkpointing=False)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "GPU available" not in done.stderr, done.stderr

