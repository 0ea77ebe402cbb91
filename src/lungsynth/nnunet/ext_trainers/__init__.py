"""Folder for nnU-Net's ``nnUNet_extTrainer`` search: it holds only the trainer re-export."""
