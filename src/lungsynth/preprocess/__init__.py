"""From a HU volume and a nodule mask to a fixed-size crop at the lungs (NIfTI-ready arrays)."""
