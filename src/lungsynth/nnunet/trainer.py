"""The project's nnU-Net trainer: nnU-Net's own, with a schedule from the config and a seed.

nnU-Net has no seed option and its shipped ``nnUNetTrainer_Xepochs`` variants still run 250
iterations per epoch. This subclass only sets the schedule, seeds Python/numpy/torch in
``initialize()`` (before the network is built and the data loaders start), runs the network under
bf16 autocast on a CPU with fast bf16 kernels when asked (nnU-Net autocasts on CUDA only) and
draws the large progress plot once at the end instead of after every epoch. Everything else
(network from the plans, loss, augmentation, checkpoints) is nnU-Net's.

nnU-Net finds a trainer by class name (``nnUNetv2_train -tr``, and ``nnUNetPredictor`` when it
loads a checkpoint). The project instantiates the class itself and never needs that lookup;
for nnU-Net's own tools, :func:`lungsynth.nnunet.environment.trainer_search_path` is the folder
to put in ``nnUNet_extTrainer`` (2.8's mechanism for trainers outside the package).
"""

from __future__ import annotations

import csv
import io
import math

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from ..runtime import bf16_is_used
from .environment import seed_everything
from .settings import TrainSettings

TRAINER_NAME = "nnUNetTrainer_lungsynth"


class nnUNetTrainer_lungsynth(nnUNetTrainer):  # noqa: N801 (nnU-Net's naming scheme)
    """nnU-Net's trainer with a configurable schedule and a seed; call :meth:`configure` first.

    The constructor must keep nnU-Net's signature: nnU-Net records the constructor's
    arguments in every checkpoint and rebuilds the trainer from them.
    """

    seed: int | None = None

    def configure(self, train: TrainSettings, seed: int, save_every: int = 50) -> None:
        """Set epochs, iterations per epoch, learning rate, foreground oversampling, the seed, and
        the epochs between resumable checkpoints (``save_every``)."""
        if self.was_initialized:
            raise RuntimeError("configure() must be called before the trainer is initialized")
        self.num_epochs = int(train.epochs)
        self.num_iterations_per_epoch = int(train.iterations_per_epoch)
        self.num_val_iterations_per_epoch = int(train.val_iterations_per_epoch)
        self.initial_lr = float(train.initial_lr)
        self.save_every = int(save_every)
        # share of each batch forced to contain foreground (nnU-Net: 0.33); read by get_dataloaders()
        self.oversample_foreground_percent = float(train.oversample_foreground)
        self.probabilistic_oversampling = train.oversampling == "probabilistic"
        # read by initialize() (network, loss) and the data loaders (target scales), as in
        # nnU-Net's nnUNetTrainerNoDeepSupervision
        self.enable_deep_supervision = bool(train.deep_supervision)
        self.seed = int(seed)
        self.cpu_bf16 = self.device.type == "cpu" and bf16_is_used(self.device, train.bf16)
        self.print_to_log_file(f"lungsynth: seed {self.seed}, {self.num_epochs} epochs x "
                               f"{self.num_iterations_per_epoch} iterations "
                               f"(+{self.num_val_iterations_per_epoch} validation iterations), "
                               f"bf16 autocast on the CPU: {self.cpu_bf16}, "
                               f"deep supervision: {self.enable_deep_supervision}; "
                               f"{foreground_oversampling(train, self.configuration_manager.batch_size)}")

    def initialize(self):
        if self.seed is None:
            raise RuntimeError(f"{type(self).__name__}: call configure(train, seed) before training")
        # before the network's weights are drawn and before the data loaders take their first batch
        seed_everything(self.seed)
        super().initialize()
        if self.cpu_bf16:
            cpu_bf16_forward(self.network)

    def on_epoch_end(self):
        # nnU-Net redraws a 30 x 54 inch figure after every epoch; draw it once, at the end
        self.logger.plot_progress_png = lambda folder: None  # shadows the method for this call
        try:
            super().on_epoch_end()
        finally:
            del self.logger.plot_progress_png

    def on_train_end(self):
        super().on_train_end()
        if self.local_rank == 0 and self.logger.get_value("train_losses", step=None):
            self.logger.plot_progress_png(self.output_folder)

    def training_log_csv(self) -> str:
        """Per epoch: train loss, validation loss, pseudo Dice, seconds (the loss curve's data)."""
        value = self.logger.get_value
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["epoch", "train_loss", "val_loss", "pseudo_dice", "ema_pseudo_dice", "seconds"])
        for epoch, (tr, va) in enumerate(zip(value("train_losses", None), value("val_losses", None))):
            dice = value("mean_fg_dice", None)[epoch]
            ema = value("ema_fg_dice", None)[epoch]
            seconds = value("epoch_end_timestamps", None)[epoch] - value("epoch_start_timestamps", None)[epoch]
            writer.writerow([epoch, _num(tr), _num(va), _num(dice), _num(ema), f"{seconds:.3f}"])
        return out.getvalue()


def foreground_oversampling(train: TrainSettings, batch_size: int) -> str:
    """What ``oversample_foreground`` really does at this batch size, for the log: nnU-Net's
    per-batch rule forces the last ``batch - round(batch x (1 - share))`` patches of every batch."""
    share = float(train.oversample_foreground)
    if train.oversampling == "probabilistic":
        return f"foreground oversampling: each patch with probability {share:g}"
    forced = batch_size - round(batch_size * (1 - share))
    return (f"foreground oversampling: {share:g} asked, {forced} of {batch_size} patches per batch "
            f"({forced / batch_size:g})")


def _num(x) -> str:
    x = float(x)
    return "" if math.isnan(x) else f"{x:.6g}"


def cpu_bf16_forward(network: torch.nn.Module) -> None:
    """Run ``network``'s forward under bf16 autocast on the CPU and hand float32 outputs on.

    nnU-Net autocasts only on CUDA (its train/validation steps use a dummy context on a CPU);
    hooks put the autocast around the network itself, so nnU-Net's own steps, loss (in float32)
    and checkpoints (no wrapper in the state dict) are unchanged.
    """
    contexts = []

    def enter(module, args):
        contexts.append(torch.autocast("cpu", dtype=torch.bfloat16))
        contexts[-1].__enter__()

    def leave(module, args, output):
        contexts.pop().__exit__(None, None, None)
        if isinstance(output, (list, tuple)):
            return type(output)(o.float() for o in output)
        return output.float()

    network.register_forward_pre_hook(enter)
    network.register_forward_hook(leave)
